-- Several `legation run` processes on one archive (PostgreSQL; on SQLite one writer holds the lock
-- file and these tables hold it alone): each job is leased to one worker at a time (storage/leases.py).
CREATE TABLE workers (
    id TEXT PRIMARY KEY,            -- host:pid:random, made at start
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,          -- a job: poll:<channel>, pages, alerts, recheck, ...
    holder TEXT NOT NULL,           -- workers.id
    taken_at TEXT NOT NULL,
    expires_at TEXT NOT NULL        -- renewed by the holder's heartbeat; past it, another worker may take it
);
CREATE INDEX leases_holder ON leases(holder);
