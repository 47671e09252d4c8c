-- Keyword alerts: one row per rule and target version, written in the same
-- transaction as the content that matched; delivery marks it delivered.

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('post', 'edit', 'deletion', 'page')),
    target TEXT NOT NULL,           -- post:<channel_id>:<post_id> or page:<url>
    channel_id INTEGER,
    post_id INTEGER,
    page_url TEXT,
    version INTEGER NOT NULL,
    terms TEXT NOT NULL,            -- JSON list of the matched keywords
    context TEXT,                   -- the text around the first match
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT,
    UNIQUE (rule, kind, target, version)
);

CREATE INDEX alerts_pending ON alerts(created_at) WHERE delivered_at IS NULL;
