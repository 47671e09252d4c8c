-- links becomes a WITHOUT ROWID table: its rows are stored in the order of its primary key,
-- and the separate index SQLite kept for that key (about 60 bytes a link, and one b-tree
-- more to write for every link saved) goes. Same columns, same rows. A post's links no
-- longer have a rowid to keep the order they were saved in: the page queue takes that
-- order from the post as it is saved (storage/pages.py).
-- The new table takes the old one's name without its views being rewritten (post_pages
-- and post_feed read links by name).
PRAGMA legacy_alter_table = ON;

CREATE TABLE links_by_post (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    url TEXT NOT NULL,              -- normalised: lower-case host, no fragment, no utm_*
    original TEXT NOT NULL,         -- as it stood in the post
    kind TEXT NOT NULL,             -- text | hidden | preview | mention
    host TEXT,
    ref_channel TEXT,
    ref_post_id INTEGER,
    PRIMARY KEY (channel_id, post_id, url, kind),
    FOREIGN KEY (channel_id, post_id) REFERENCES posts(channel_id, post_id)
) WITHOUT ROWID;
INSERT INTO links_by_post (channel_id, post_id, url, original, kind, host, ref_channel, ref_post_id)
SELECT channel_id, post_id, url, original, kind, host, ref_channel, ref_post_id FROM links;
DROP TABLE links;
ALTER TABLE links_by_post RENAME TO links;
CREATE INDEX links_url ON links(url);

PRAGMA legacy_alter_table = OFF;
