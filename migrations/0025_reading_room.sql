-- The reading room lists edits newest first: the edited posts (version 2 or later) by the time
-- their newest version was seen, without reading every post of the archive.
CREATE INDEX posts_edited ON posts(version_seen_at) WHERE version > 1;
-- `legation status` and the reading room's home page count the posts the web preview cannot
-- show, per channel: by this index of those few posts, not by reading a million.
CREATE INDEX posts_unviewable ON posts(channel_id) WHERE media LIKE '%"unviewable"%';
