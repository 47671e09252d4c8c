-- legation copy-archive (storage/copy.py): how far a copy from another archive has come, table by
-- table, written in the transaction of each batch; a copy stopped at any moment resumes after its
-- last batch. The same table in the PostgreSQL schema (migrations/postgresql/0003_archive_copies.sql).
CREATE TABLE archive_copies (
    source TEXT NOT NULL,           -- the archive copied from: a path, or a URL without its password
    table_name TEXT NOT NULL,
    copied_to TEXT,                 -- JSON: the key of the last row copied; NULL before the first batch
    rows INTEGER NOT NULL DEFAULT 0,
    finished_at TEXT,
    PRIMARY KEY (source, table_name)
);
