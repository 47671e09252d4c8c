-- Search newest first without sorting every match: the full-text index is keyed by
-- time. post_search mirrors each post's text under key = epoch seconds * 100000 + n
-- (n makes keys unique within a second), and posts_fts indexes post_search by that
-- key, so "newest first" is a reverse walk of the index that stops after LIMIT rows.

DROP TRIGGER posts_fts_insert;
DROP TRIGGER posts_fts_delete;
DROP TRIGGER posts_fts_update;
DROP TABLE posts_fts;

CREATE TABLE post_search (
    key INTEGER PRIMARY KEY,        -- unixepoch(posts.date) * 100000 + n
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    text TEXT,
    UNIQUE (channel_id, post_id)
);

CREATE VIRTUAL TABLE posts_fts USING fts5(
    text,
    content='post_search',
    content_rowid='key',
    tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO posts_fts(posts_fts, rank) VALUES ('automerge', 8);

CREATE TRIGGER post_search_insert AFTER INSERT ON post_search BEGIN
    INSERT INTO posts_fts(rowid, text) VALUES (new.key, new.text);
END;

CREATE TRIGGER post_search_delete AFTER DELETE ON post_search BEGIN
    INSERT INTO posts_fts(posts_fts, rowid, text) VALUES ('delete', old.key, old.text);
END;

CREATE TRIGGER posts_search_insert AFTER INSERT ON posts BEGIN
    INSERT INTO post_search (key, channel_id, post_id, text)
    VALUES (
        coalesce(
            (SELECT max(key) + 1 FROM post_search
             WHERE key >= coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) * 100000
               AND key < (coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) + 1) * 100000),
            coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) * 100000
        ),
        new.channel_id, new.post_id, new.text
    );
END;

CREATE TRIGGER posts_search_update AFTER UPDATE OF text, date ON posts BEGIN
    DELETE FROM post_search WHERE channel_id = old.channel_id AND post_id = old.post_id;
    INSERT INTO post_search (key, channel_id, post_id, text)
    VALUES (
        coalesce(
            (SELECT max(key) + 1 FROM post_search
             WHERE key >= coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) * 100000
               AND key < (coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) + 1) * 100000),
            coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) * 100000
        ),
        new.channel_id, new.post_id, new.text
    );
END;

CREATE TRIGGER posts_search_delete AFTER DELETE ON posts BEGIN
    DELETE FROM post_search WHERE channel_id = old.channel_id AND post_id = old.post_id;
END;

-- Posts archived before this migration, oldest first.
INSERT INTO post_search (key, channel_id, post_id, text)
SELECT coalesce(CAST(strftime('%s', date) AS INTEGER), 0) * 100000
           + row_number() OVER (PARTITION BY coalesce(CAST(strftime('%s', date) AS INTEGER), 0)
                                ORDER BY channel_id, post_id) - 1,
       channel_id, post_id, text
FROM posts;
