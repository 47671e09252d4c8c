-- The full-text index reads post text from posts itself. post_search held a third copy of
-- every post's text (posts, post_versions, post_search); it becomes a view over posts with
-- the same columns, and each post keeps its search key (epoch seconds * 100000 + n, as
-- 0007 and 0010 define it) in posts.search_key. The index's own data is unchanged: the
-- keys and texts it was built from are the same.

ALTER TABLE posts ADD COLUMN search_key INTEGER;
UPDATE posts SET search_key = (
    SELECT s.key FROM post_search s WHERE s.channel_id = posts.channel_id AND s.post_id = posts.post_id);
CREATE UNIQUE INDEX posts_search_key ON posts(search_key);

DROP TRIGGER posts_search_insert;
DROP TRIGGER posts_search_update;
DROP TRIGGER post_search_insert;
DROP TRIGGER post_search_delete;
DROP TABLE post_search;

CREATE VIEW post_search AS
SELECT search_key AS key, channel_id, post_id, text FROM posts WHERE search_key IS NOT NULL;

-- A new post takes the next free key of its second (or, once a second is full, a key below
-- every other), then enters the index.
CREATE TRIGGER posts_search_insert AFTER INSERT ON posts BEGIN
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

-- A new text or date: the old entry leaves the index, the post takes a fresh key, and enters again.
CREATE TRIGGER posts_search_update AFTER UPDATE OF text, date ON posts BEGIN
    INSERT INTO posts_fts(posts_fts, rowid, text)
    SELECT 'delete', old.search_key, old.text WHERE old.search_key IS NOT NULL;
    UPDATE posts SET search_key = NULL WHERE channel_id = new.channel_id AND post_id = new.post_id;
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
