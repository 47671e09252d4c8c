-- Inline keyboard URL buttons kept with each post and version (JSON list of
-- {"label", "url"}; their URLs are also links of kind 'button'), and posts that a
-- page held but that did not parse: recorded, shown in status, retried; never saved
-- as an empty version.

ALTER TABLE posts ADD COLUMN buttons TEXT;
ALTER TABLE post_versions ADD COLUMN buttons TEXT;

CREATE TABLE post_problems (
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    post_id INTEGER NOT NULL,
    error TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    next_attempt_at TEXT,
    PRIMARY KEY (channel_id, post_id)
);
