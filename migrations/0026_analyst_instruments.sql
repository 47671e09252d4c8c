-- The analyst's instruments: reach over time, the same statement across channels, who
-- amplifies whom.

-- A post's view count each time a source read it, thinned as it ages (storage/reach.py).
CREATE TABLE post_reach (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    at TEXT NOT NULL,               -- when it was read
    views INTEGER NOT NULL,
    PRIMARY KEY (channel_id, post_id, at)
) WITHOUT ROWID;

CREATE VIEW reach AS
SELECT c.username AS channel, r.post_id, r.at, r.views
FROM post_reach r JOIN channels c ON c.id = r.channel_id;

-- Near-duplicate text (storage/echoes.py): the LSH bands of each post's MinHash signature,
-- and the pairs of posts found similar, both ways.
CREATE TABLE echo_bands (
    band_key INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    PRIMARY KEY (band_key, channel_id, post_id)
) WITHOUT ROWID;

-- Each indexed post's signature, one byte a bin: candidates from the bands are estimated from it
-- before their texts are compared (boilerplate shared by many posts makes many candidates).
CREATE TABLE echo_signatures (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (channel_id, post_id)
) WITHOUT ROWID;

CREATE TABLE echo_pairs (
    channel_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    echo_channel_id INTEGER NOT NULL,
    echo_post_id INTEGER NOT NULL,
    kind TEXT NOT NULL,             -- 'repost' or 'edited repost'
    similarity REAL NOT NULL,       -- Jaccard of the word 3-grams
    found_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, post_id, echo_channel_id, echo_post_id)
) WITHOUT ROWID;

-- Forwards of a post, found by the t.me address of their origin.
CREATE INDEX posts_forwarded_from ON posts(lower(forwarded_from_url)) WHERE forwarded_from_url IS NOT NULL;

-- The t.me post a forward came from, as channel and post id.
CREATE VIEW forward_origins AS
SELECT channel_id, post_id, date,
       substr(rest, 1, instr(rest, '/') - 1) AS origin_channel,
       CAST(substr(rest, instr(rest, '/') + 1) AS INTEGER) AS origin_post_id
FROM (SELECT channel_id, post_id, date, CASE WHEN after LIKE 's/%' THEN substr(after, 3) ELSE after END AS rest
      FROM (SELECT channel_id, post_id, date, substr(forwarded_from_url, instr(forwarded_from_url, 't.me/') + 5) AS after
            FROM posts WHERE forwarded_from_url IS NOT NULL AND instr(forwarded_from_url, 't.me/') > 0))
WHERE instr(rest, '/') > 1;

-- Each post next to the posts that carry the same statement: similar text (repost, edited
-- repost), forwards either way, and links to the same release page (or another language version
-- of its release). `legation echoes` merges a pair tied several ways under its strongest kind.
CREATE VIEW echoes AS
SELECT c.username AS channel, e.post_id, ec.username AS echo_channel, e.echo_post_id, p.date AS echo_date,
       e.kind, e.similarity
FROM echo_pairs e JOIN channels c ON c.id = e.channel_id JOIN channels ec ON ec.id = e.echo_channel_id
JOIN posts p ON p.channel_id = e.echo_channel_id AND p.post_id = e.echo_post_id
UNION ALL
SELECT oc.username, o.post_id, fc.username, f.post_id, f.date, 'forward', NULL
FROM forward_origins f JOIN channels fc ON fc.id = f.channel_id
JOIN channels oc ON oc.username = f.origin_channel COLLATE NOCASE
JOIN posts o ON o.channel_id = oc.id AND o.post_id = f.origin_post_id
UNION ALL
SELECT fc.username, f.post_id, oc.username, o.post_id, o.date, 'forward', NULL
FROM forward_origins f JOIN channels fc ON fc.id = f.channel_id
JOIN channels oc ON oc.username = f.origin_channel COLLATE NOCASE
JOIN posts o ON o.channel_id = oc.id AND o.post_id = f.origin_post_id
UNION ALL
SELECT c1.username, l1.post_id, c2.username, l2.post_id, p2.date, 'same release', NULL
FROM links l1
JOIN pages g1 ON g1.url = l1.url
JOIN pages g2 ON g2.url = g1.url OR (g1.release_id IS NOT NULL AND g2.release_id = g1.release_id)
JOIN links l2 ON l2.url = g2.url AND NOT (l2.channel_id = l1.channel_id AND l2.post_id = l1.post_id)
JOIN channels c1 ON c1.id = l1.channel_id JOIN channels c2 ON c2.id = l2.channel_id
JOIN posts p2 ON p2.channel_id = l2.channel_id AND p2.post_id = l2.post_id;

-- Who amplifies whom: a channel forwarding another's posts, or linking them, with counts and
-- first and last dates (`legation graph` writes it for Gephi or networkx).
CREATE VIEW amplification AS
SELECT channel, amplifies, kind, count(*) AS posts, min(date) AS first_at, max(date) AS last_at FROM (
    SELECT c.username AS channel, f.origin_channel AS amplifies, 'forward' AS kind, f.date
    FROM forward_origins f JOIN channels c ON c.id = f.channel_id
    WHERE lower(f.origin_channel) != lower(c.username)
    UNION ALL
    SELECT c.username, l.ref_channel, 'link', p.date
    FROM links l JOIN channels c ON c.id = l.channel_id
    JOIN posts p ON p.channel_id = l.channel_id AND p.post_id = l.post_id
    WHERE l.ref_channel IS NOT NULL AND lower(l.ref_channel) != lower(c.username)
)
GROUP BY lower(channel), lower(amplifies), kind;

-- Gaps: ids between a channel's oldest and newest archived post that no source showed, checked
-- on their single-post page and found gone (deleted before legation saw them).
CREATE TABLE post_absences (
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    post_id INTEGER NOT NULL,
    checked_at TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (channel_id, post_id)
) WITHOUT ROWID;

-- Posts archived before this migration are not in the echo index yet: the daemon's "echo-index"
-- job indexes them, a chunk at a time, by rowid up to the newest post of that moment (posts
-- saved later are indexed as they are saved).
CREATE TABLE echo_backlog (
    done_to INTEGER NOT NULL,       -- posts.rowid indexed up to
    up_to INTEGER NOT NULL          -- the last rowid the backlog covers
);
INSERT INTO echo_backlog (done_to, up_to) SELECT 0, coalesce(max(rowid), 0) FROM posts;
