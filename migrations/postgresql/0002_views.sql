-- The SQLite archive's views (migrations/*.sql), in PostgreSQL's dialect: string_agg for
-- group_concat, strpos for instr, lower() = lower() for COLLATE NOCASE, and no bare columns
-- beside an aggregate. The same names, columns and rows.

CREATE VIEW post_pages AS
SELECT c.username, l.channel_id, l.post_id, p.date AS post_date, l.kind AS link_kind,
       g.url, g.status, g.final_url, g.title, g.published_at, g.lang, g.text, g.fetched_at, g.version
FROM links l
JOIN pages g ON g.url = l.url
JOIN posts p ON p.channel_id = l.channel_id AND p.post_id = l.post_id
JOIN channels c ON c.id = l.channel_id;

CREATE VIEW deletions AS
SELECT c.username AS channel, p.post_id, 'https://t.me/' || c.username || '/' || p.post_id AS url,
       p.date, p.deleted_at, p.version AS versions, p.text
FROM posts p JOIN channels c ON c.id = p.channel_id
WHERE p.deleted_at IS NOT NULL;

CREATE VIEW post_feed AS
SELECT c.username AS channel, p.post_id, 'https://t.me/' || c.username || '/' || p.post_id AS url,
       p.date, p.text, p.views, p.author, p.edited, p.deleted_at, p.version AS versions,
       p.forwarded_from, p.reply_to, p.grouped_id,
       (SELECT string_agg(g.title, ' | ') FROM links l JOIN pages g ON g.url = l.url
         WHERE l.channel_id = p.channel_id AND l.post_id = p.post_id AND g.title IS NOT NULL) AS page_titles,
       (SELECT f.path FROM post_media m JOIN media_files f ON f.sha256 = m.sha256
         WHERE m.channel_id = p.channel_id AND m.post_id = p.post_id AND m.version = p.version
           AND m.role IN ('photo', 'thumbnail')
         ORDER BY m.item, m.role LIMIT 1) AS picture
FROM posts p JOIN channels c ON c.id = p.channel_id;

CREATE VIEW post_search AS
SELECT search_key AS key, channel_id, post_id, text FROM posts WHERE search_key IS NOT NULL;

CREATE VIEW post_versions AS
SELECT channel_id, post_id, version, text, html, media, link_preview, forwarded_from, edited, seen_at,
       content_hash, buttons
FROM post_history
UNION ALL
SELECT channel_id, post_id, version, text, html, media, link_preview, forwarded_from, edited,
       version_seen_at AS seen_at, content_hash, buttons
FROM posts;

CREATE VIEW edits AS
SELECT c.username AS channel, v.post_id, 'https://t.me/' || c.username || '/' || v.post_id AS url,
       v.version, v.seen_at, prev.version AS previous_version, prev.seen_at AS previous_seen_at,
       prev.text AS previous_text, v.text
FROM post_versions v
JOIN post_history prev
  ON prev.channel_id = v.channel_id AND prev.post_id = v.post_id AND prev.version = v.version - 1
JOIN channels c ON c.id = v.channel_id;

CREATE VIEW release_versions AS
SELECT r.id AS release_id, r.site, r.number, g.release_lang AS lang,
       CASE WHEN g.status = 'gone' AND g.found_by = 'translation' THEN 'not translated' ELSE g.status END AS state,
       g.url, g.title, g.published_at, g.doc_number, g.version, g.fetched_at,
       coalesce(g.found_by, 'post') AS found_by
FROM releases r JOIN pages g ON g.release_id = r.id;

CREATE VIEW reach AS
SELECT c.username AS channel, r.post_id, r.at, r.views
FROM post_reach r JOIN channels c ON c.id = r.channel_id;

-- SQLite's CAST of '22958?single' AS INTEGER reads the leading digits: so does this.
CREATE VIEW forward_origins AS
SELECT channel_id, post_id, date,
       substr(rest, 1, strpos(rest, '/') - 1) AS origin_channel,
       CAST(NULLIF(substring(substr(rest, strpos(rest, '/') + 1) FROM '^[0-9]+'), '') AS BIGINT) AS origin_post_id
FROM (SELECT channel_id, post_id, date, CASE WHEN after LIKE 's/%' THEN substr(after, 3) ELSE after END AS rest
      FROM (SELECT channel_id, post_id, date,
                   substr(forwarded_from_url, strpos(forwarded_from_url, 't.me/') + 5) AS after
            FROM posts WHERE forwarded_from_url IS NOT NULL AND strpos(forwarded_from_url, 't.me/') > 0) AS urls
     ) AS paths
WHERE strpos(rest, '/') > 1;

CREATE VIEW echoes AS
SELECT c.username AS channel, e.post_id, ec.username AS echo_channel, e.echo_post_id, p.date AS echo_date,
       e.kind, e.similarity
FROM echo_pairs e JOIN channels c ON c.id = e.channel_id JOIN channels ec ON ec.id = e.echo_channel_id
JOIN posts p ON p.channel_id = e.echo_channel_id AND p.post_id = e.echo_post_id
UNION ALL
SELECT oc.username, o.post_id, fc.username, f.post_id, f.date, 'forward', NULL
FROM forward_origins f JOIN channels fc ON fc.id = f.channel_id
JOIN channels oc ON lower(oc.username) = lower(f.origin_channel)
JOIN posts o ON o.channel_id = oc.id AND o.post_id = f.origin_post_id
UNION ALL
SELECT fc.username, f.post_id, oc.username, o.post_id, o.date, 'forward', NULL
FROM forward_origins f JOIN channels fc ON fc.id = f.channel_id
JOIN channels oc ON lower(oc.username) = lower(f.origin_channel)
JOIN posts o ON o.channel_id = oc.id AND o.post_id = f.origin_post_id
UNION ALL
SELECT c1.username, l1.post_id, c2.username, l2.post_id, p2.date, 'same release', NULL
FROM links l1
JOIN pages g1 ON g1.url = l1.url
JOIN pages g2 ON g2.url = g1.url OR (g1.release_id IS NOT NULL AND g2.release_id = g1.release_id)
JOIN links l2 ON l2.url = g2.url AND NOT (l2.channel_id = l1.channel_id AND l2.post_id = l1.post_id)
JOIN channels c1 ON c1.id = l1.channel_id JOIN channels c2 ON c2.id = l2.channel_id
JOIN posts p2 ON p2.channel_id = l2.channel_id AND p2.post_id = l2.post_id;

CREATE VIEW amplification AS
SELECT min(channel) AS channel, min(amplifies) AS amplifies, kind, count(*) AS posts, min(date) AS first_at,
       max(date) AS last_at FROM (
    SELECT c.username AS channel, f.origin_channel AS amplifies, 'forward' AS kind, f.date
    FROM forward_origins f JOIN channels c ON c.id = f.channel_id
    WHERE lower(f.origin_channel) != lower(c.username)
    UNION ALL
    SELECT c.username, l.ref_channel, 'link', p.date
    FROM links l JOIN channels c ON c.id = l.channel_id
    JOIN posts p ON p.channel_id = l.channel_id AND p.post_id = l.post_id
    WHERE l.ref_channel IS NOT NULL AND lower(l.ref_channel) != lower(c.username)
) AS amplified
GROUP BY lower(channel), lower(amplifies), kind;
