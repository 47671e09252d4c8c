"""Reading the archive out in order, one row at a time: posts with their pages and versions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from storage.db import Connection
from storage.errors import SearchQueryError
from storage.media import get_post_media
from storage.pages import get_attachments, get_release_versions, release_pages
from storage.sqlite.errors import storage_error

EXPORT_SQL = f"""
SELECT c.username AS channel, p.post_id, 'https://t.me/' || c.username || '/' || p.post_id AS url,
       p.date, p.text, p.html, p.views, p.author, p.edited, p.deleted_at, p.forwarded_from,
       p.forwarded_from_url, p.reply_to, p.grouped_id, p.service, p.version AS versions, p.media,
       p.link_preview, p.first_seen_at, p.last_seen_at, p.channel_id
FROM posts p JOIN channels c ON c.id = p.channel_id
WHERE (:channel IS NULL OR c.username = :channel COLLATE NOCASE)
  AND (:since IS NULL OR p.date >= :since)
  AND (:until IS NULL OR p.date < :until)
  AND (:query IS NULL OR EXISTS (
        SELECT 1 FROM posts_fts JOIN post_search s ON s.key = posts_fts.rowid
        WHERE posts_fts MATCH :query AND s.channel_id = p.channel_id AND s.post_id = p.post_id)
      OR EXISTS (  -- or a release page the post links (in any of its languages) holds the words
        SELECT 1 FROM links l JOIN pages g ON g.url IN {release_pages("l.url")}
        JOIN pages_fts ON pages_fts.rowid = g.rowid
        WHERE l.channel_id = p.channel_id AND l.post_id = p.post_id AND pages_fts MATCH :query))
ORDER BY p.date, c.username, p.post_id
"""
# The same on PostgreSQL: the words by search_words (storage/postgres/search.py), :query as tsquery text.
POSTGRES_EXPORT_SQL = EXPORT_SQL[:EXPORT_SQL.index("  AND (:query IS NULL")] + f"""  AND (:query IS NULL
      OR search_words(p.text) @@ to_tsquery('simple', :query)
      OR EXISTS (
        SELECT 1 FROM links l JOIN pages g ON g.url IN {release_pages("l.url")}
        WHERE l.channel_id = p.channel_id AND l.post_id = p.post_id
          AND search_words(coalesce(g.title, '') || ' ' || coalesce(g.text, '')) @@ to_tsquery('simple', :query)))
ORDER BY p.date, c.username, p.post_id
"""
JSON_COLUMNS = ("media", "link_preview")


async def iter_posts(
    conn: Connection, *, channel: str | None = None, since: str | None = None,
    until: str | None = None, query: str | None = None, with_pages: bool = False,
    with_versions: bool = False, with_media: bool = False,
) -> AsyncGenerator[dict[str, Any], None]:
    """Posts oldest first, as dicts; memory stays constant however many there are."""
    params = {"channel": channel, "since": since, "until": until, "query": query}
    sql = EXPORT_SQL
    if conn.engine == "postgresql":
        from storage.postgres.search import tsquery_of

        sql = POSTGRES_EXPORT_SQL
        try:
            params["query"] = tsquery_of(query) if query is not None else None
        except ValueError as exc:
            raise SearchQueryError(query or "", str(exc)) from exc
    try:
        async with _rows(conn, sql, params) as cursor:
            names = [d[0] for d in cursor.description]
            async for row in cursor:
                yield await _post(conn, names, row, with_pages, with_versions, with_media)
    except sqlite3.OperationalError as exc:  # the statement is fixed: the query's fault, unless the database ails
        if (trouble := storage_error(exc)) is not None:
            raise trouble from exc
        raise SearchQueryError(query or "", str(exc)) from exc


@asynccontextmanager
async def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> AsyncIterator[Any]:
    """The export's rows a batch at a time: SQLite's cursor steps through them; PostgreSQL's
    would fetch them all at once, so a cursor held on the server does."""
    if conn.engine != "postgresql":
        async with conn.execute(sql, params) as cursor:
            yield cursor
        return
    from storage.sqlite.connection import Cursor

    cursor = Cursor(conn, await conn.run(lambda db: db.execute_held(sql, params)))  # type: ignore[arg-type]
    try:
        yield cursor
    finally:
        await cursor.close()


async def _post(conn: Connection, names: list[str], row: Any, with_pages: bool,
                with_versions: bool, with_media: bool = False) -> dict[str, Any]:
    post = dict(zip(names, row, strict=True))
    for column in JSON_COLUMNS:
        post[column] = json.loads(post[column]) if post[column] else None
    post["edited"], post["service"] = bool(post["edited"]), bool(post["service"])
    channel_id = post.pop("channel_id")
    post["links"] = await _links(conn, channel_id, post["post_id"])
    if with_pages:
        post["pages"] = await _pages(conn, channel_id, post["post_id"])
    if with_versions:
        post["version_history"] = await _versions(conn, channel_id, post["post_id"])
    if with_media:
        post["media_files"] = await get_post_media(conn, channel_id, post["post_id"])
    return post


async def _links(conn: Connection, channel_id: int, post_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute_fetchall(
        "SELECT url, kind FROM links WHERE channel_id = ? AND post_id = ? ORDER BY kind, url", (channel_id, post_id))
    return [dict(row) for row in rows]


async def _pages(conn: Connection, channel_id: int, post_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute_fetchall(
        """SELECT g.url, g.status, g.title, g.published_at, g.text, g.fetched_at FROM links l
           JOIN pages g ON g.url = l.url WHERE l.channel_id = ? AND l.post_id = ? ORDER BY g.url""",
        (channel_id, post_id))
    return [{**dict(row), "attachments": await get_attachments(conn, row["url"]),
             "translations": await get_release_versions(conn, row["url"])} for row in rows]


async def _versions(conn: Connection, channel_id: int, post_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute_fetchall(
        "SELECT version, seen_at, text, edited FROM post_versions WHERE channel_id = ? AND post_id = ? "
        "ORDER BY version", (channel_id, post_id))
    return [{**dict(row), "edited": bool(row["edited"])} for row in rows]
