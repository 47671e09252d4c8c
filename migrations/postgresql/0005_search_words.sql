-- legation search on PostgreSQL (storage/postgres/search.py): the words of a text as SQLite's FTS5
-- index holds them (unicode61, remove_diacritics 2): lower case, Latin accents removed, ё and ß
-- kept (the search language asks for their other spellings), punctuation between words a space (so
-- that a URL or "С.В.Лавров" is its words, as FTS5 splits them). The search language's stems come as
-- prefixes, so no dictionary stems here: 'simple'. GIN-indexed on posts, pages and attachments.
CREATE FUNCTION search_words(content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT AS $$
    SELECT to_tsvector('simple', translate(lower(content),
        'àáâãäåāăąçćčďèéêëēėęěìíîïīįıñńňòóôõöøōőùúûüūůűųýÿžźżšśřŕľĺłťţğ'
        || '.,;:!?()[]{}<>"''«»„“”‘’—–-/\|@#$%^&*+=~`_…',
        'aaaaaaaaacccdeeeeeeeeiiiiiiinnnoooooooouuuuuuuuyyzzzssrrlllttg'
        || '                                              '))
$$;

CREATE INDEX posts_search_words ON posts USING gin (search_words(text));
CREATE INDEX pages_search_words ON pages USING gin (search_words(coalesce(title, '') || ' ' || coalesce(text, '')));
CREATE INDEX attachments_search_words ON page_attachments USING gin (search_words(coalesce(title, '') || ' ' || coalesce(text, '')));
