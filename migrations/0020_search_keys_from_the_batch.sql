-- Saving a batch computes the search keys of its new posts itself (storage/posts.py, one
-- query for the batch, the rule of 0010 and 0015), and inserts each post with its key: the
-- full-text index takes the key and text from the new row. The trigger that allocated a
-- key per row with an UPDATE (which rewrote the whole row, text and HTML, a second time)
-- now serves only posts inserted without a key (by hand, with sqlite3). Same keys, same index.

DROP TRIGGER posts_search_insert;

CREATE TRIGGER posts_search_insert AFTER INSERT ON posts WHEN new.search_key IS NULL BEGIN
    UPDATE posts SET search_key = (
        SELECT CASE
                   WHEN slot.last IS NULL THEN slot.base
                   WHEN slot.last + 1 < slot.base + 100000 THEN slot.last + 1
                   ELSE min(coalesce((SELECT min(search_key) FROM posts), 0), 0) - 1
               END
        FROM (SELECT base, (SELECT max(search_key) FROM posts
                            WHERE search_key >= base AND search_key < base + 100000) AS last
              FROM (SELECT coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) * 100000 AS base)) AS slot)
    WHERE channel_id = new.channel_id AND post_id = new.post_id;
    INSERT INTO posts_fts(rowid, text)
    SELECT search_key, text FROM posts WHERE channel_id = new.channel_id AND post_id = new.post_id;
END;

CREATE TRIGGER posts_search_insert_keyed AFTER INSERT ON posts WHEN new.search_key IS NOT NULL BEGIN
    INSERT INTO posts_fts(rowid, text) VALUES (new.search_key, new.text);
END;
