-- Health: one row per job run of the daemon (and per sync/backfill command).

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,              -- poll:<channel>, pages, recheck, sync, backfill
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT CHECK (outcome IN ('ok', 'failed', 'stopped')),
    counts TEXT,                    -- JSON: what the run saved or fetched
    error TEXT
);

CREATE INDEX runs_job ON runs(job, started_at);
