-- A sync does not parse the newest page again while it is the same page (only views,
-- reactions and subscriber counts differ): the signature of the page it last parsed, the
-- lowest post id on it, and when it was read (parsed again after [sync] reparse_after anyway).

ALTER TABLE channels ADD COLUMN page_signature TEXT;
ALTER TABLE channels ADD COLUMN page_lowest_id INTEGER;
ALTER TABLE channels ADD COLUMN page_read_at TEXT;
