-- The newest version of a post is stored once, in posts. post_history keeps the versions
-- an edit superseded; post_versions becomes a view with the same columns and rows: the
-- history, and each post's newest version from posts (seen_at: posts.version_seen_at, when
-- that version was first seen). Every version is kept.

ALTER TABLE posts ADD COLUMN version_seen_at TEXT;
UPDATE posts SET version_seen_at = (
    SELECT v.seen_at FROM post_versions v
    WHERE v.channel_id = posts.channel_id AND v.post_id = posts.post_id AND v.version = posts.version);

CREATE TABLE post_history (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    text TEXT,
    html TEXT,
    media TEXT,
    link_preview TEXT,
    forwarded_from TEXT,
    edited INTEGER NOT NULL DEFAULT 0,
    seen_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    buttons TEXT,
    PRIMARY KEY (channel_id, post_id, version),
    FOREIGN KEY (channel_id, post_id) REFERENCES posts(channel_id, post_id)
);
INSERT INTO post_history
SELECT v.channel_id, v.post_id, v.version, v.text, v.html, v.media, v.link_preview, v.forwarded_from, v.edited,
       v.seen_at, v.content_hash, v.buttons
FROM post_versions v JOIN posts p ON p.channel_id = v.channel_id AND p.post_id = v.post_id
WHERE v.version < p.version;

DROP VIEW edits;
DROP TABLE post_versions;

CREATE VIEW post_versions AS
SELECT channel_id, post_id, version, text, html, media, link_preview, forwarded_from, edited, seen_at,
       content_hash, buttons
FROM post_history
UNION ALL
SELECT channel_id, post_id, version, text, html, media, link_preview, forwarded_from, edited,
       version_seen_at AS seen_at, content_hash, buttons
FROM posts;

-- Each edit beside the version before it (always in the history), as 0008 defined it.
CREATE VIEW edits AS
SELECT c.username AS channel, v.post_id, 'https://t.me/' || c.username || '/' || v.post_id AS url,
       v.version, v.seen_at, prev.version AS previous_version, prev.seen_at AS previous_seen_at,
       prev.text AS previous_text, v.text
FROM post_versions v
JOIN post_history prev
  ON prev.channel_id = v.channel_id AND prev.post_id = v.post_id AND prev.version = v.version - 1
JOIN channels c ON c.id = v.channel_id;
