-- A release in all its languages. mid.ru publishes one document under /ru/, /en/, /de/ ...
-- with the same numeric id; a page found as another language version of an archived one
-- (from the links the page gives to its translations, or by that same-id convention) joins
-- the queue like a linked page and the release of the page it was found from.
CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,             -- the followed domain ("mid.ru")
    number TEXT NOT NULL,           -- the site's id of the document, shared by its languages ("1944000")
    first_seen_at TEXT NOT NULL,
    UNIQUE (site, number)
);

ALTER TABLE pages ADD COLUMN release_id INTEGER REFERENCES releases(id);
ALTER TABLE pages ADD COLUMN release_lang TEXT;  -- which language version of its release the page is
-- How the page came to the queue: NULL, a post links it; 'translation', an archived page of the
-- same release pointed to it or the same-id convention named it (a 404 then means "not translated").
ALTER TABLE pages ADD COLUMN found_by TEXT;

CREATE INDEX pages_release ON pages(release_id) WHERE release_id IS NOT NULL;

-- One row per language version of each release: what exists, what is not translated (the
-- site answered 404), what waits (walled, failed: retried) and the page that holds it.
CREATE VIEW release_versions AS
SELECT r.id AS release_id, r.site, r.number, g.release_lang AS lang,
       CASE WHEN g.status = 'gone' AND g.found_by = 'translation' THEN 'not translated' ELSE g.status END AS state,
       g.url, g.title, g.published_at, g.doc_number, g.version, g.fetched_at,
       coalesce(g.found_by, 'post') AS found_by
FROM releases r JOIN pages g ON g.release_id = r.id;
