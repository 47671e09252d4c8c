-- The text of a release page's attachments (PDF, DOCX), extracted when they are fetched, and a
-- full-text index over it, so that search finds words that are only in a page's documents.
ALTER TABLE page_attachments ADD COLUMN text TEXT;

CREATE VIRTUAL TABLE attachments_fts USING fts5(
    title, text,
    content='page_attachments',
    content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);

CREATE TRIGGER attachments_fts_insert AFTER INSERT ON page_attachments BEGIN
    INSERT INTO attachments_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;

CREATE TRIGGER attachments_fts_delete AFTER DELETE ON page_attachments BEGIN
    INSERT INTO attachments_fts(attachments_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
END;

CREATE TRIGGER attachments_fts_update AFTER UPDATE OF title, text ON page_attachments BEGIN
    INSERT INTO attachments_fts(attachments_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
    INSERT INTO attachments_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;

INSERT INTO attachments_fts(attachments_fts) VALUES ('rebuild');
