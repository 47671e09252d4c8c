-- The post feed shows each post's first picture (a photo, or a video's thumbnail) as its
-- file's path under [media] dir, when one is kept; every earlier column stays as it was.

DROP VIEW post_feed;

CREATE VIEW post_feed AS
SELECT c.username AS channel, p.post_id, 'https://t.me/' || c.username || '/' || p.post_id AS url,
       p.date, p.text, p.views, p.author, p.edited, p.deleted_at, p.version AS versions,
       p.forwarded_from, p.reply_to, p.grouped_id,
       (SELECT group_concat(g.title, ' | ') FROM links l JOIN pages g ON g.url = l.url
         WHERE l.channel_id = p.channel_id AND l.post_id = p.post_id AND g.title IS NOT NULL) AS page_titles,
       (SELECT f.path FROM post_media m JOIN media_files f ON f.sha256 = m.sha256
         WHERE m.channel_id = p.channel_id AND m.post_id = p.post_id AND m.version = p.version
           AND m.role IN ('photo', 'thumbnail')
         ORDER BY m.item, m.role LIMIT 1) AS picture
FROM posts p JOIN channels c ON c.id = p.channel_id;
