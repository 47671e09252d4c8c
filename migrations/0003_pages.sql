-- Release pages linked from posts: a fetch queue, versions with the raw bytes,
-- attachments, robots.txt cache, full-text index, and references between posts.

ALTER TABLE links ADD COLUMN ref_channel TEXT;    -- a t.me post link: its channel ...
ALTER TABLE links ADD COLUMN ref_post_id INTEGER; -- ... and post id

CREATE TABLE pages (
    url TEXT PRIMARY KEY,           -- normalised, as in links.url
    host TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'ok', 'blocked', 'gone', 'failed')),
    final_url TEXT,                 -- after redirects
    redirects TEXT,                 -- JSON list of the URLs passed through
    http_status INTEGER,
    content_type TEXT,
    fetched_at TEXT,                -- last attempt that got an answer
    sha256 TEXT,                    -- of the raw bytes of the newest version
    title TEXT,
    published_at TEXT,
    lang TEXT,
    text TEXT,                      -- clean text of the newest version
    doc_number TEXT,
    extractor TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,           -- NULL: no retry planned
    first_seen_at TEXT NOT NULL
);

CREATE INDEX pages_due ON pages(status, next_attempt_at);

CREATE TABLE page_versions (
    url TEXT NOT NULL REFERENCES pages(url),
    version INTEGER NOT NULL,
    fetched_at TEXT NOT NULL,
    final_url TEXT,
    http_status INTEGER,
    headers TEXT,                   -- JSON object of the response headers
    raw BLOB NOT NULL,              -- zlib-compressed response body
    size INTEGER NOT NULL,          -- uncompressed bytes
    sha256 TEXT NOT NULL,
    content_hash TEXT NOT NULL,     -- of title, date and text: what makes a new version
    title TEXT,
    published_at TEXT,
    lang TEXT,
    text TEXT,
    PRIMARY KEY (url, version)
);

CREATE TABLE page_attachments (
    page_url TEXT NOT NULL REFERENCES pages(url),
    url TEXT NOT NULL,
    title TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'ok', 'blocked', 'gone', 'failed')),
    content_type TEXT,
    size INTEGER,
    sha256 TEXT,
    raw BLOB,                       -- zlib-compressed
    fetched_at TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (page_url, url)
);

CREATE TABLE robots (
    host TEXT PRIMARY KEY,
    fetched_at TEXT NOT NULL,
    http_status INTEGER,
    body TEXT
);

CREATE VIRTUAL TABLE pages_fts USING fts5(
    title, text,
    content='pages',
    content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);

CREATE TRIGGER pages_fts_insert AFTER INSERT ON pages BEGIN
    INSERT INTO pages_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;

CREATE TRIGGER pages_fts_delete AFTER DELETE ON pages BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
END;

CREATE TRIGGER pages_fts_update AFTER UPDATE OF title, text ON pages BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
    INSERT INTO pages_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;

-- Each post next to each archived page it links to.
CREATE VIEW post_pages AS
SELECT c.username, l.channel_id, l.post_id, p.date AS post_date, l.kind AS link_kind,
       g.url, g.status, g.final_url, g.title, g.published_at, g.lang, g.text, g.fetched_at, g.version
FROM links l
JOIN pages g ON g.url = l.url
JOIN posts p ON p.channel_id = l.channel_id AND p.post_id = l.post_id
JOIN channels c ON c.id = l.channel_id;
