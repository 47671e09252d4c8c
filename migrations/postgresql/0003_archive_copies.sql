-- As migrations/0029_archive_copies.sql: how far a copy-archive has come, table by table.
CREATE TABLE archive_copies (
    source TEXT NOT NULL,
    table_name TEXT NOT NULL,
    copied_to TEXT,
    rows BIGINT NOT NULL DEFAULT 0,
    finished_at TEXT,
    PRIMARY KEY (source, table_name)
);
