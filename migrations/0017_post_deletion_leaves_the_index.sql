-- Deleting a post row (legation never does; a user pruning an archive with sqlite3 may) failed:
-- 0015 made post_search a view, and 0009's delete trigger still deleted from it ("cannot
-- modify post_search because it is a view"). The post's text now leaves the full-text index.

DROP TRIGGER posts_search_delete;
CREATE TRIGGER posts_search_delete AFTER DELETE ON posts BEGIN
    INSERT INTO posts_fts(posts_fts, rowid, text)
    SELECT 'delete', old.search_key, old.text WHERE old.search_key IS NOT NULL;
END;
