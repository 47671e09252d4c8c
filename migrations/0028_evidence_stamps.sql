-- RFC 3161 time-stamps of the evidence chain (storage/evidence.py, monitor/evidence/tsa.py): a
-- time-stamping authority signed, at gen_time, the SHA-256 of the 32 bytes of chain record seq's
-- hash; so that record, and through the chain every record before it, existed by then.
CREATE TABLE evidence_stamps (
    id INTEGER PRIMARY KEY,
    tsa TEXT NOT NULL,              -- the authority's URL, credentials left out
    seq INTEGER NOT NULL REFERENCES evidence_chain(seq),
    hash TEXT NOT NULL,             -- that record's hash, as it was stamped
    gen_time TEXT NOT NULL,         -- the time the authority signed
    signer TEXT,                    -- the subject of the authority's signing certificate
    token BLOB NOT NULL,            -- the TimeStampResp as received (DER: `openssl ts -verify -in` reads it)
    requested_at TEXT NOT NULL
);
CREATE INDEX evidence_stamps_seq ON evidence_stamps(seq);

CREATE TRIGGER evidence_stamps_no_update BEFORE UPDATE ON evidence_stamps
BEGIN SELECT RAISE(ABORT, 'time-stamps are append-only'); END;
CREATE TRIGGER evidence_stamps_no_delete BEFORE DELETE ON evidence_stamps
BEGIN SELECT RAISE(ABORT, 'time-stamps are append-only'); END;
CREATE INDEX evidence_chain_ref ON evidence_chain(ref);  -- a citation finds the records of what it cites
