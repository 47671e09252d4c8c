-- Edits and deletions: the re-check sweep's cursor, posts suspected deleted
-- until their single-post page confirms it, and each post's history events.

ALTER TABLE channels ADD COLUMN recheck_cursor INTEGER;   -- sweep in progress: next ?before=
ALTER TABLE channels ADD COLUMN recheck_until INTEGER;    -- ... down to this post id
ALTER TABLE channels ADD COLUMN recheck_done_at TEXT;

-- An archived post missing from a re-read page: pending until its embed page
-- (https://t.me/<channel>/<id>?embed=1) says "Post not found" or shows it.
CREATE TABLE deletion_candidates (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    noticed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    last_error TEXT,
    PRIMARY KEY (channel_id, post_id),
    FOREIGN KEY (channel_id, post_id) REFERENCES posts(channel_id, post_id)
);

-- Things that happened to a post besides new versions.
CREATE TABLE post_events (
    id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('deleted', 'restored')),
    at TEXT NOT NULL,
    detail TEXT,
    FOREIGN KEY (channel_id, post_id) REFERENCES posts(channel_id, post_id)
);

CREATE INDEX post_events_post ON post_events(channel_id, post_id);
CREATE INDEX posts_deleted_at ON posts(deleted_at) WHERE deleted_at IS NOT NULL;
