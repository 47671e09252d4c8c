"""Queries of the reading room and the feeds: channels, timelines, one post whole, lists of changes."""

from __future__ import annotations

import json
import zlib
from typing import Any

from storage.db import Connection
from storage.echoes import find_echoes
from storage.pages import release_pages
from storage.reach import get_reach

CHANNELS_SQL = """
SELECT c.username, c.title, c.description, c.subscribers, c.last_sync_at, c.last_error, c.last_error_at,
       (SELECT count(*) FROM posts p WHERE p.channel_id = c.id) AS posts,
       (SELECT p.date FROM posts p WHERE p.channel_id = c.id ORDER BY p.post_id DESC LIMIT 1) AS newest,
       (SELECT count(*) FROM post_history h WHERE h.channel_id = c.id) AS edits,
       -- by the partial index of deleted posts, not by reading every post of the channel
       (SELECT count(*) FROM posts p WHERE +p.channel_id = c.id AND p.deleted_at IS NOT NULL) AS deletions
FROM channels c WHERE :username IS NULL OR c.username = :username COLLATE NOCASE
ORDER BY c.username COLLATE NOCASE
"""
# A post as a timeline shows it: its newest version, badges, pictures, and the pages it links.
POST_COLUMNS = """
c.username AS channel, p.post_id, p.date, p.text, p.views, p.author, p.version AS versions, p.deleted_at,
p.forwarded_from, p.forwarded_from_url, p.reply_to, p.grouped_id, p.media, p.link_preview, p.service,
p.first_seen_at, p.last_seen_at, p.content_hash, p.version_seen_at
"""


async def get_channels(conn: Connection) -> list[dict[str, Any]]:
    """Every archived channel with its counts: posts, newest post, edits, deletions."""
    return [dict(row) for row in await conn.execute_fetchall(CHANNELS_SQL, {"username": None})]


async def get_channel(conn: Connection, username: str) -> dict[str, Any] | None:
    """One channel by its username (any case), as :func:`get_channels` gives it."""
    rows = await conn.execute_fetchall(CHANNELS_SQL, {"username": username})
    return dict(rows[0]) if rows else None


async def get_timeline(conn: Connection, username: str, before: int | None, limit: int) -> list[dict[str, Any]]:
    """A channel's posts, newest first, below post ``before`` (all when None)."""
    rows = await conn.execute_fetchall(
        f"""SELECT {POST_COLUMNS} FROM posts p JOIN channels c ON c.id = p.channel_id
            WHERE c.username = ? COLLATE NOCASE AND p.post_id < ? ORDER BY p.post_id DESC LIMIT ?""",
        (username, before if before is not None else 2**62, limit))
    return [await _with_extras(conn, dict(row)) for row in rows]


async def get_post_ids(conn: Connection, username: str, since: str | None = None) -> list[int]:
    """The ids of a channel's posts dated ``since`` or later (all when None), newest first."""
    rows = await conn.execute_fetchall(
        """SELECT p.post_id FROM posts p JOIN channels c ON c.id = p.channel_id
           WHERE c.username = ? COLLATE NOCASE AND (? IS NULL OR p.date >= ?) ORDER BY p.post_id DESC""",
        (username, since, since))
    return [row[0] for row in rows]


async def get_post(conn: Connection, username: str, post_id: int) -> dict[str, Any] | None:
    """One post whole: its newest version with badges and pictures, every version, its
    deletion events, the release pages it links (with versions, attachments, translations)."""
    rows = await conn.execute_fetchall(
        f"""SELECT {POST_COLUMNS} FROM posts p JOIN channels c ON c.id = p.channel_id
            WHERE c.username = ? COLLATE NOCASE AND p.post_id = ?""", (username, post_id))
    if not rows:
        return None
    post = await _with_extras(conn, dict(rows[0]))
    key = (post["channel"], post_id)
    post["history"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT v.version, v.seen_at, v.text, v.edited, v.content_hash FROM post_versions v
           JOIN channels c ON c.id = v.channel_id WHERE c.username = ? AND v.post_id = ? ORDER BY v.version""", key)]
    post["events"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT e.kind, e.at, e.detail FROM post_events e JOIN channels c ON c.id = e.channel_id
           WHERE c.username = ? AND e.post_id = ? ORDER BY e.at, e.id""", key)]
    post["links"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT l.url, l.kind FROM links l JOIN channels c ON c.id = l.channel_id
           WHERE c.username = ? AND l.post_id = ? ORDER BY l.kind, l.url""", key)]
    post["page_details"] = [await get_page(conn, page["url"]) for page in post["pages"]]
    post["reach"] = await conn.run(get_reach, post["channel"], post_id)
    post["echoes"] = [echo for echo in await conn.run(find_echoes, post["channel"], post_id) or []
                      if echo.kind != "this post"]
    return post


async def _with_extras(conn: Connection, post: dict[str, Any]) -> dict[str, Any]:
    """Pictures of the post's newest version (stored files) and the pages it links."""
    key = (post["channel"], post["post_id"])
    post["media"] = json.loads(post["media"]) if post["media"] else []
    post["link_preview"] = json.loads(post["link_preview"]) if post["link_preview"] else None
    post["pictures"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT m.item, m.role, f.path, f.mime, f.width, f.height FROM post_media m
           JOIN channels c ON c.id = m.channel_id JOIN media_files f ON f.sha256 = m.sha256
           JOIN posts p ON p.channel_id = m.channel_id AND p.post_id = m.post_id AND p.version = m.version
           WHERE c.username = ? AND m.post_id = ? AND m.status = 'ok' ORDER BY m.item, m.role""", key)]
    post["archived_refs"] = await _archived_refs(conn, *key)
    post["pages"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT g.url, g.status, g.title, g.published_at, g.lang FROM links l
           JOIN channels c ON c.id = l.channel_id JOIN pages g ON g.url = l.url
           WHERE c.username = ? AND l.post_id = ? ORDER BY g.url""", key)]
    return post


async def _archived_refs(conn: Connection, channel: str, post_id: int) -> list[tuple[str, int]]:
    """(channel, post id) of the archived posts that a post's t.me links point to."""
    rows = await conn.execute_fetchall(
        """SELECT rc.username, l.ref_post_id FROM links l JOIN channels c ON c.id = l.channel_id
           JOIN channels rc ON rc.username = l.ref_channel COLLATE NOCASE
           JOIN posts rp ON rp.channel_id = rc.id AND rp.post_id = l.ref_post_id
           WHERE c.username = ? AND l.post_id = ? AND l.ref_post_id IS NOT NULL""", (channel, post_id))
    return [(row[0], row[1]) for row in rows]


async def get_page(conn: Connection, url: str) -> dict[str, Any] | None:
    """A release page whole: its newest capture, every version, attachments, the other language
    versions of its release, and the posts that link it (or another of its languages)."""
    rows = await conn.execute_fetchall(
        """SELECT url, status, final_url, http_status, fetched_at, sha256, title, published_at, lang, text,
                  doc_number, version, error, first_seen_at, release_id, release_lang FROM pages WHERE url = ?""",
        (url,))
    if not rows:
        return None
    page = dict(rows[0])
    page["versions"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT version, fetched_at, title, published_at, text, sha256, content_hash, size, fetched_with
           FROM page_versions WHERE url = ? ORDER BY version""", (url,))]
    page["attachments"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT url, title, status, content_type, size, sha256, fetched_at FROM page_attachments
           WHERE page_url = ? ORDER BY url""", (url,))]
    page["translations"] = [dict(row) for row in await conn.execute_fetchall(
        """SELECT lang, state, url, title FROM release_versions
           WHERE release_id = ? AND url != ? ORDER BY lang, url""", (page["release_id"], url))]
    page["linked_by"] = [dict(row) for row in await conn.execute_fetchall(
        f"""SELECT DISTINCT c.username AS channel, l.post_id, p.date FROM links l
            JOIN channels c ON c.id = l.channel_id JOIN posts p ON p.channel_id = l.channel_id AND p.post_id = l.post_id
            WHERE l.url IN {release_pages(':url')} ORDER BY p.date DESC""", {"url": url})]
    return page


async def get_attachment(conn: Connection, page_url: str, url: str) -> tuple[str | None, bytes] | None:
    """The stored bytes of one attachment of a page and their type; None when it has none."""
    rows = await conn.execute_fetchall(
        "SELECT content_type, raw FROM page_attachments WHERE page_url = ? AND url = ? AND status = 'ok'",
        (page_url, url))
    if not rows or rows[0]["raw"] is None:
        return None
    return rows[0]["content_type"], zlib.decompress(rows[0]["raw"])


EDITS_SQL = """
SELECT channel, post_id, version, seen_at, previous_text, text FROM (
    SELECT c.username AS channel, p.post_id, p.version, p.version_seen_at AS seen_at, prev.text AS previous_text,
           p.text
    FROM posts p JOIN channels c ON c.id = p.channel_id
    JOIN post_history prev ON prev.channel_id = p.channel_id AND prev.post_id = p.post_id AND prev.version = p.version - 1
    WHERE p.version > 1
    UNION ALL
    SELECT c.username, h.post_id, h.version, h.seen_at, prev.text, h.text
    FROM post_history h JOIN channels c ON c.id = h.channel_id
    JOIN post_history prev ON prev.channel_id = h.channel_id AND prev.post_id = h.post_id AND prev.version = h.version - 1
    WHERE h.version > 1
) AS edits
WHERE ? IS NULL OR channel = ? COLLATE NOCASE
ORDER BY seen_at DESC, channel, post_id, version DESC LIMIT ?
"""


async def get_edits(conn: Connection, limit: int, channel: str | None = None) -> list[dict[str, Any]]:
    """Edits newest first: each version 2 or later next to the text it replaced (the edited posts
    by their partial index: the rest of the archive is not read)."""
    rows = await conn.execute_fetchall(EDITS_SQL, (channel, channel, limit))
    return [{**dict(row), "archived_refs": await _archived_refs(conn, row["channel"], row["post_id"])} for row in rows]


async def get_deletions(conn: Connection, limit: int, channel: str | None = None) -> list[dict[str, Any]]:
    """Confirmed deletions, newest first, with the text as last seen."""
    rows = await conn.execute_fetchall(
        """SELECT channel, post_id, date, deleted_at, versions, text FROM deletions
           WHERE ? IS NULL OR channel = ? COLLATE NOCASE ORDER BY deleted_at DESC, channel, post_id LIMIT ?""",
        (channel, channel, limit))
    return [{**dict(row), "archived_refs": await _archived_refs(conn, row["channel"], row["post_id"])} for row in rows]


async def get_pages_list(conn: Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Release pages, most recently fetched first, of one status or all."""
    rows = await conn.execute_fetchall(
        """SELECT url, status, title, published_at, fetched_at, lang, version, error, release_lang FROM pages
           WHERE ? IS NULL OR status = ? ORDER BY coalesce(fetched_at, first_seen_at) DESC, url LIMIT ?""",
        (status, status, limit))
    return [dict(row) for row in rows]


async def get_alerts_list(conn: Connection, limit: int, rule: str | None = None) -> list[dict[str, Any]]:
    """Alerts newest first: the rule, what matched and where."""
    rows = await conn.execute_fetchall(
        """SELECT a.id, a.rule, a.kind, c.username AS channel, a.post_id, a.page_url, a.version, a.terms,
                  a.context, a.created_at, a.delivered_at, g.title AS page_title
           FROM alerts a LEFT JOIN channels c ON c.id = a.channel_id LEFT JOIN pages g ON g.url = a.page_url
           WHERE ? IS NULL OR a.rule = ? ORDER BY a.created_at DESC, a.id DESC LIMIT ?""", (rule, rule, limit))
    return [{**dict(row), "terms": json.loads(row["terms"])} for row in rows]


async def get_alert_rules(conn: Connection) -> list[str]:
    """The rules that have alerts in the archive."""
    return [row[0] for row in await conn.execute_fetchall("SELECT DISTINCT rule FROM alerts ORDER BY rule")]


async def get_stored_file(conn: Connection, path: str) -> str | None:
    """The type of a stored media file by its path under [media] dir; None when the archive has none."""
    rows = await conn.execute_fetchall("SELECT mime FROM media_files WHERE path = ?", (path,))
    return (rows[0]["mime"] or "application/octet-stream") if rows else None
