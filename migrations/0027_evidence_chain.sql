-- A hash chain of what was captured (storage/evidence.py): each post version, confirmed deletion,
-- release page version and media file gets a record holding the SHA-256 of its canonical content and the
-- hash of the record before it, so that changing, dropping or reordering archived rows afterwards
-- is found by `legation verify`. Rows archived before this migration are not in the chain.
CREATE TABLE evidence_chain (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('genesis', 'post', 'deletion', 'page', 'media')),
    ref TEXT NOT NULL,              -- post: channel_id/post_id/version; deletion: channel_id/post_id/event id;
                                    -- page: version#url; media: the file's SHA-256
    content_hash TEXT NOT NULL,     -- SHA-256 of the canonical content (see storage/evidence.py)
    captured_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL              -- SHA-256 of [seq, kind, ref, content_hash, captured_at, prev_hash]
);

-- Append-only, as far as the schema can say so (verify catches what goes around it).
CREATE TRIGGER evidence_chain_no_update BEFORE UPDATE ON evidence_chain
BEGIN SELECT RAISE(ABORT, 'the evidence chain is append-only'); END;
CREATE TRIGGER evidence_chain_no_delete BEFORE DELETE ON evidence_chain
BEGIN SELECT RAISE(ABORT, 'the evidence chain is append-only'); END;
