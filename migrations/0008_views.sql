-- Views for reading the archive: a post feed, each edit beside the version before,
-- deletions. (post_pages, each post beside its archived pages, came with 0003.)

CREATE VIEW post_feed AS
SELECT c.username AS channel, p.post_id, 'https://t.me/' || c.username || '/' || p.post_id AS url,
       p.date, p.text, p.views, p.author, p.edited, p.deleted_at, p.version AS versions,
       p.forwarded_from, p.reply_to, p.grouped_id,
       (SELECT group_concat(g.title, ' | ') FROM links l JOIN pages g ON g.url = l.url
         WHERE l.channel_id = p.channel_id AND l.post_id = p.post_id AND g.title IS NOT NULL) AS page_titles
FROM posts p JOIN channels c ON c.id = p.channel_id;

CREATE VIEW edits AS
SELECT c.username AS channel, v.post_id, 'https://t.me/' || c.username || '/' || v.post_id AS url,
       v.version, v.seen_at, prev.version AS previous_version, prev.seen_at AS previous_seen_at,
       prev.text AS previous_text, v.text
FROM post_versions v
JOIN post_versions prev
  ON prev.channel_id = v.channel_id AND prev.post_id = v.post_id AND prev.version = v.version - 1
JOIN channels c ON c.id = v.channel_id;

CREATE VIEW deletions AS
SELECT c.username AS channel, p.post_id, 'https://t.me/' || c.username || '/' || p.post_id AS url,
       p.date, p.deleted_at, p.version AS versions, p.text
FROM posts p JOIN channels c ON c.id = p.channel_id
WHERE p.deleted_at IS NOT NULL;
