-- legation's first schema: channels, posts, their versions and links, and the
-- full-text index over post text. Every timestamp is ISO-8601 UTC text
-- ("2024-05-14T16:10:02Z"); JSON columns hold JSON text.

CREATE TABLE channels (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    telegram_id INTEGER,            -- numeric channel id (from the preview's data-view)
    title TEXT,
    description TEXT,
    subscribers INTEGER,
    counters TEXT,                  -- JSON: {"photos": 87, "videos": 41, ...}
    added_at TEXT NOT NULL,
    updated_at TEXT,
    -- resume state: everything in [tail_id, head_id] is archived, without gaps
    head_id INTEGER,
    tail_id INTEGER,
    backfill_done_at TEXT,          -- set once the walk reached the first post
    walk_target INTEGER,            -- a sync walk in progress: the new head ...
    walk_cursor INTEGER,            -- ... and the ?before= to fetch next
    last_sync_at TEXT,
    last_error TEXT,
    last_error_at TEXT
);

CREATE TABLE posts (
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    post_id INTEGER NOT NULL,
    date TEXT,
    text TEXT,                      -- plain text; hidden links live in html and links
    html TEXT,                      -- the message text as Telegram rendered it
    views INTEGER,
    author TEXT,                    -- author signature
    edited INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT,
    forwarded_from TEXT,            -- name of the original channel or user
    forwarded_from_url TEXT,
    reply_to INTEGER,               -- post id in the same channel
    reply_to_url TEXT,
    grouped_id INTEGER,             -- album: web preview uses the album's first post id
    media TEXT,                     -- JSON list of media items, album members included
    link_preview TEXT,              -- JSON: {"url", "site", "title", "description"}
    service INTEGER NOT NULL DEFAULT 0, -- 1 for service messages ("Channel created", pins)
    content_hash TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1, -- newest row of post_versions
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, post_id)
);

CREATE INDEX posts_date ON posts(date);

CREATE TABLE post_versions (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    version INTEGER NOT NULL,       -- 1 is the first capture
    text TEXT,
    html TEXT,
    media TEXT,
    link_preview TEXT,
    forwarded_from TEXT,
    edited INTEGER NOT NULL DEFAULT 0,
    seen_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (channel_id, post_id, version),
    FOREIGN KEY (channel_id, post_id) REFERENCES posts(channel_id, post_id)
);

CREATE TABLE links (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    url TEXT NOT NULL,              -- normalised: lower-case host, no fragment, no utm_*
    original TEXT NOT NULL,         -- as it stood in the post
    kind TEXT NOT NULL,             -- text | hidden | preview | mention
    host TEXT,
    PRIMARY KEY (channel_id, post_id, url, kind),
    FOREIGN KEY (channel_id, post_id) REFERENCES posts(channel_id, post_id)
);

CREATE INDEX links_url ON links(url);
CREATE INDEX links_host ON links(host);

CREATE VIRTUAL TABLE posts_fts USING fts5(
    text,
    content='posts',
    content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);

CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts(rowid, text) VALUES (new.rowid, new.text);
END;

CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
    INSERT INTO posts_fts(posts_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;

CREATE TRIGGER posts_fts_update AFTER UPDATE OF text ON posts BEGIN
    INSERT INTO posts_fts(posts_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO posts_fts(rowid, text) VALUES (new.rowid, new.text);
END;
