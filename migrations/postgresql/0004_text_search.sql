-- Full-text search with PostgreSQL's own machinery, where the SQLite archive has its FTS5 tables:
-- archive_words(text) is a post's or page's words as the Snowball stemmers PostgreSQL ships find
-- them in Russian, English and German (ё read as е, as legation's own search does), indexed with
-- GIN; archive_query(q) reads a search as a web search box does ("phrases", OR, -word) in the same
-- three languages. README: PostgreSQL shows the queries.
CREATE FUNCTION archive_words(content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT AS $$
    SELECT to_tsvector('russian', t) || to_tsvector('english', t) || to_tsvector('german', t)
    FROM (SELECT translate(content, 'ёЁ', 'еЕ') AS t) AS folded
$$;

CREATE FUNCTION archive_query(search text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT AS $$
    SELECT websearch_to_tsquery('russian', q) || websearch_to_tsquery('english', q)
           || websearch_to_tsquery('german', q)
    FROM (SELECT translate(search, 'ёЁ', 'еЕ') AS q) AS folded
$$;

CREATE INDEX posts_words ON posts USING gin (archive_words(text));
CREATE INDEX pages_words ON pages USING gin (archive_words(coalesce(title, '') || ' ' || coalesce(text, '')));
