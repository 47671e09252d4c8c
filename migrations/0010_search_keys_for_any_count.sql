-- Search keys stay unique however many posts share one second. A second holds 100000
-- keys (epoch seconds * 100000 + n); once full (in practice: posts without a date, which
-- all share second 0), further posts take keys below every other key, so they sort as
-- the oldest, where undated posts belong, and never collide with the next second.

DROP TRIGGER posts_search_insert;
DROP TRIGGER posts_search_update;

CREATE TRIGGER posts_search_insert AFTER INSERT ON posts BEGIN
    INSERT INTO post_search (key, channel_id, post_id, text)
    SELECT CASE
               WHEN slot.last IS NULL THEN slot.base
               WHEN slot.last + 1 < slot.base + 100000 THEN slot.last + 1
               ELSE min(coalesce((SELECT min(key) FROM post_search), 0), 0) - 1
           END,
           new.channel_id, new.post_id, new.text
    FROM (SELECT base, (SELECT max(key) FROM post_search WHERE key >= base AND key < base + 100000) AS last
          FROM (SELECT coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) * 100000 AS base)) AS slot;
END;

CREATE TRIGGER posts_search_update AFTER UPDATE OF text, date ON posts BEGIN
    DELETE FROM post_search WHERE channel_id = old.channel_id AND post_id = old.post_id;
    INSERT INTO post_search (key, channel_id, post_id, text)
    SELECT CASE
               WHEN slot.last IS NULL THEN slot.base
               WHEN slot.last + 1 < slot.base + 100000 THEN slot.last + 1
               ELSE min(coalesce((SELECT min(key) FROM post_search), 0), 0) - 1
           END,
           new.channel_id, new.post_id, new.text
    FROM (SELECT base, (SELECT max(key) FROM post_search WHERE key >= base AND key < base + 100000) AS last
          FROM (SELECT coalesce(CAST(strftime('%s', new.date) AS INTEGER), 0) * 100000 AS base)) AS slot;
END;
