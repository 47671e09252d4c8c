"""Full-text search of posts and release pages (SQLite FTS5): two tiers, exact words first, then other word forms."""

from __future__ import annotations

import sqlite3
from typing import Any

from storage.db import Connection
from storage.errors import SearchQueryError
from storage.models import PageHit, SearchHit
from storage.pages import release_pages
from storage.sqlite.errors import storage_error

SNIPPET_OPEN, SNIPPET_CLOSE = "\x02", "\x03"
# One search, newest first, for the command line and the browse view: {match} is the FTS5
# expression (a parameter here, an SQL function in Datasette), {open}/{close} the snippet marks,
# {limit} the number of rows.
# The index is keyed by time (migrations 0007, 0010), so newest first is a reverse walk of the
# index that stops after :limit rows, and :since/:until bound the key.
SEARCH_SQL = """
SELECT c.username AS channel, s.post_id, p.date, snippet(posts_fts, 0, {open}, {close}, '…', 16) AS snippet
FROM posts_fts
JOIN post_search s ON s.key = posts_fts.rowid
JOIN posts p ON p.channel_id = s.channel_id AND p.post_id = s.post_id
JOIN channels c ON c.id = s.channel_id
WHERE posts_fts MATCH {match}
    AND posts_fts.rowid >= coalesce(CAST(strftime('%s', nullif(:since, '')) AS INTEGER) * 100000, -9223372036854775807)
    AND posts_fts.rowid < coalesce(CAST(strftime('%s', nullif(:until, '')) AS INTEGER) * 100000, 9223372036854775807)
    AND (nullif(:channel, '') IS NULL OR c.username = :channel COLLATE NOCASE)
ORDER BY posts_fts.rowid DESC
LIMIT {limit}
"""


SEARCH_POSTS_SQL = SEARCH_SQL.format(match=":match", open=":open", close=":close", limit=":limit")


def beyond_exact(exact: str, wider: str | None) -> str | None:
    """What ``wider`` finds that ``exact`` does not (the second tier of a search)."""
    return f"({wider}) NOT ({exact})" if wider else None


async def search_posts(
    conn: Connection,
    exact: str,
    *,
    wider: str | None = None,
    channel: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    """Full-text search: posts matching the FTS5 expression ``exact``, newest first, then those that
    only ``wider`` matches (stemmed forms), newest first; matches wrapped in ``SNIPPET_OPEN``/``SNIPPET_CLOSE``.
    """
    sql = SEARCH_POSTS_SQL
    params: dict[str, Any] = {"open": SNIPPET_OPEN, "close": SNIPPET_CLOSE, "since": since, "until": until,
                              "channel": channel, "limit": limit}
    hits: list[SearchHit] = []
    for match, is_exact in _tiers(exact, wider):
        if len(hits) < limit:
            rows = await _matching(conn, sql, {**params, "match": match, "limit": limit - len(hits)}, exact)
            hits += [SearchHit(row["channel"], row["post_id"], row["date"], row["snippet"], is_exact) for row in rows]
    return hits


def _tiers(exact: str, wider: str | None) -> list[tuple[str, bool]]:
    """The expressions of a two-tier search: ``exact``, then what only ``wider`` finds."""
    beyond = beyond_exact(exact, wider)
    return [(exact, True)] + ([(beyond, False)] if beyond is not None else [])


async def _matching(conn: Connection, sql: str, params: dict[str, Any], query: str) -> list[Any]:
    """The rows of a fixed search statement: an error is the query's, unless the database itself ails."""
    if conn.engine == "postgresql":
        return await _matching_postgres(conn, sql, params, query)
    try:
        return await conn.execute_fetchall(sql, params)
    except sqlite3.OperationalError as exc:
        if (trouble := storage_error(exc)) is not None:
            raise trouble from exc
        raise SearchQueryError(query, str(exc)) from exc


async def _matching_postgres(conn: Connection, sql: str, params: dict[str, Any], query: str) -> list[Any]:
    """As :func:`_matching`, on PostgreSQL: the statement's counterpart, the expression as tsquery."""
    from storage.postgres import search as postgres

    try:
        match = postgres.tsquery_of(params["match"])
    except ValueError as exc:
        raise SearchQueryError(query, str(exc)) from exc
    if sql == SEARCH_POSTS_SQL:
        return await conn.run(lambda db: db.execute_native(postgres.SEARCH_POSTS, {**params, "match": match}).fetchall())
    counterpart = {PAGE_SEARCH_SQL: POSTGRES_PAGE_SEARCH, ATTACHMENT_SEARCH_SQL: POSTGRES_ATTACHMENT_SEARCH}[sql]
    return await conn.execute_fetchall(counterpart, {**params, "match": match})


# The filters of a page search, on the page ``g`` (an attachment's by its page): dated by the date
# the page gives (else when it was fetched); with a channel, only pages its posts link (or
# another language version of their release).
PAGE_FILTERS = f"""(:since IS NULL OR coalesce(g.published_at, g.fetched_at) >= :since)
    AND (:until IS NULL OR coalesce(g.published_at, g.fetched_at) < :until)
    AND (:channel IS NULL OR EXISTS (SELECT 1 FROM links l JOIN channels c ON c.id = l.channel_id
                                     WHERE l.url IN {release_pages("g.url")} AND c.username = :channel COLLATE NOCASE))"""
# Release pages by their newest version (pages_fts indexes title and text), newest first.
PAGE_SEARCH_SQL = f"""
SELECT g.url, g.title, coalesce(g.published_at, g.fetched_at) AS date,
       snippet(pages_fts, 1, :open, :close, '…', 16) AS snippet
FROM pages_fts JOIN pages g ON g.rowid = pages_fts.rowid
WHERE pages_fts MATCH :match AND g.status = 'ok'
    AND {PAGE_FILTERS}
ORDER BY date DESC, g.url
LIMIT :limit
"""
# Documents attached to release pages (PDF, DOCX), by their text; dated by their page.
ATTACHMENT_SEARCH_SQL = f"""
SELECT a.url, a.page_url, coalesce(a.title, a.url) AS title, coalesce(g.published_at, g.fetched_at) AS date,
       snippet(attachments_fts, 1, :open, :close, '…', 16) AS snippet
FROM attachments_fts JOIN page_attachments a ON a.rowid = attachments_fts.rowid JOIN pages g ON g.url = a.page_url
WHERE attachments_fts MATCH :match AND a.status = 'ok'
    AND {PAGE_FILTERS}
ORDER BY date DESC, a.url
LIMIT :limit
"""
# The same on PostgreSQL (storage/postgres/search.py): the filters as above, the words by search_words.
POSTGRES_PAGE_SEARCH = f"""
SELECT g.url, g.title, coalesce(g.published_at, g.fetched_at) AS date,
       ts_headline('simple', coalesce(g.text, ''), to_tsquery('simple', :match),
                   'StartSel=' || :open || ', StopSel=' || :close || ', MaxWords=24, MinWords=12') AS snippet
FROM pages g
WHERE search_words(coalesce(g.title, '') || ' ' || coalesce(g.text, '')) @@ to_tsquery('simple', :match)
    AND g.status = 'ok' AND {PAGE_FILTERS}
ORDER BY date DESC, g.url
LIMIT :limit
"""
POSTGRES_ATTACHMENT_SEARCH = f"""
SELECT a.url, a.page_url, coalesce(a.title, a.url) AS title, coalesce(g.published_at, g.fetched_at) AS date,
       ts_headline('simple', coalesce(a.text, ''), to_tsquery('simple', :match),
                   'StartSel=' || :open || ', StopSel=' || :close || ', MaxWords=24, MinWords=12') AS snippet
FROM page_attachments a JOIN pages g ON g.url = a.page_url
WHERE search_words(coalesce(a.title, '') || ' ' || coalesce(a.text, '')) @@ to_tsquery('simple', :match)
    AND a.status = 'ok' AND {PAGE_FILTERS}
ORDER BY date DESC, a.url
LIMIT :limit
"""
LINKED_BY_SQL = f"""
SELECT DISTINCT c.username, l.post_id, p.date FROM links l JOIN channels c ON c.id = l.channel_id
JOIN posts p ON p.channel_id = l.channel_id AND p.post_id = l.post_id
WHERE l.url IN {release_pages(":url")} ORDER BY p.date, c.username, l.post_id
"""


async def search_pages(
    conn: Connection,
    exact: str,
    *,
    wider: str | None = None,
    channel: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 20,
) -> list[PageHit]:
    """Archived release pages whose title or text matches, as :func:`search_posts` finds posts:
    exact words first, then other forms; each with the posts that link it."""
    params: dict[str, Any] = {"open": SNIPPET_OPEN, "close": SNIPPET_CLOSE, "since": since, "until": until,
                              "channel": channel}
    hits: list[PageHit] = []
    for match, is_exact in _tiers(exact, wider):
        for sql, page_column in ((PAGE_SEARCH_SQL, "url"), (ATTACHMENT_SEARCH_SQL, "page_url")):
            if len(hits) >= limit:
                break
            for row in await _matching(conn, sql, {**params, "match": match, "limit": limit - len(hits)}, exact):
                linked = await conn.execute_fetchall(LINKED_BY_SQL, {"url": row[page_column]})
                hits.append(PageHit(row["url"], row["title"], row["date"], row["snippet"] or "", is_exact,
                                    tuple((r[0], r[1]) for r in linked),
                                    attachment_of=row["page_url"] if page_column == "page_url" else None))
    return hits
