-- Media files of posts, kept before their CDN links expire. post_media is the queue and the
-- record: one row per file of a media item of a post version (a photo, a video's thumbnail,
-- a small video). media_files holds each distinct file once, by SHA-256; its path is relative
-- to [media] dir (ab/abcdef....jpg), so the archive stays readable with sqlite3 alone.

CREATE TABLE media_files (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mime TEXT,
    width INTEGER,
    height INTEGER,
    path TEXT NOT NULL,             -- under [media] dir
    first_seen_at TEXT NOT NULL
);

CREATE TABLE post_media (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    version INTEGER NOT NULL,       -- the post version whose media this is
    item INTEGER NOT NULL,          -- index in posts.media
    role TEXT NOT NULL,             -- photo | thumbnail | video
    url TEXT NOT NULL,              -- the newest download link seen (they expire)
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'ok', 'failed', 'expired', 'skipped')),
    sha256 TEXT REFERENCES media_files(sha256),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    seen_at TEXT NOT NULL,          -- when a page last showed the link
    fetched_at TEXT,
    next_attempt_at TEXT,
    PRIMARY KEY (channel_id, post_id, version, item, role),
    FOREIGN KEY (channel_id, post_id) REFERENCES posts(channel_id, post_id)
);
CREATE INDEX post_media_due ON post_media(status, next_attempt_at);
CREATE INDEX post_media_file ON post_media(sha256);
