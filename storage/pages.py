"""Queries on release pages: the queue, captures with versions, attachments, robots.txt."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from storage.db import Connection
from storage.evidence import append_records, page_content
from storage.models import Attachment, PageCapture, PageRow, PageTask, PageText, PageVersion

MAX_PAGES_PER_POST = 10  # followed links one post may queue: a post with thousands cannot starve the rest


def _under(host: str, domain: str) -> str:
    """SQL: ``host`` is ``domain`` or under it ("www.mid.ru" under "mid.ru")."""
    return (f"({host} = {domain} OR (length({host}) > length({domain}) "
            f"AND substr({host}, length({host}) - length({domain})) = '.' || {domain}))")


def _queue_followed(links: str, wanted: str) -> str:
    """SQL: the pages that followed links point to, into the queue: at most MAX_PAGES_PER_POST
    of a post, its first ones. ``links`` gives the candidates (channel_id, post_id, url, host,
    place: their order in the post), ``wanted`` chooses the pages of them to queue."""
    return f"""
INSERT INTO pages (url, host, first_seen_at)
SELECT url, host, :now FROM (
    SELECT l.url, l.host, row_number() OVER (PARTITION BY l.channel_id, l.post_id ORDER BY l.place) AS n
    FROM ({links}) AS l
    WHERE EXISTS (SELECT 1 FROM followed_domains f WHERE {_under("l.host", "f.domain")})
) AS followed
WHERE n <= :per_post AND {wanted} AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.url = followed.url)
ON CONFLICT (url) DO NOTHING
"""


# Links just saved, in the order of their post: [post_id, url, host] each.
_QUEUE_SAVED = _queue_followed(
    links="SELECT :channel_id AS channel_id, json_extract(value, '$[0]') AS post_id, "
          "json_extract(value, '$[1]') AS url, json_extract(value, '$[2]') AS host, key AS place "
          "FROM json_each(:links)",
    wanted="TRUE")
# Links archived before their domain was followed: a post's links in the order of their address.
_QUEUE_ARCHIVED = _queue_followed(
    links="SELECT channel_id, post_id, url, host, url AS place FROM links WHERE ref_post_id IS NULL",
    wanted=f"EXISTS (SELECT 1 FROM json_each(:domains) d WHERE {_under('followed.host', 'd.value')})")


def queue_saved_links(db: sqlite3.Connection, channel_id: int, links: Sequence[tuple[int, str, str | None]],
                      now: str) -> int:
    """Queue the pages that ``links`` (post_id, url, host), just saved and in the order of their
    posts, point to on followed domains; returns how many pages joined the queue. Part of
    saving posts (storage.posts)."""
    cursor = db.execute(_QUEUE_SAVED, {"now": now, "per_post": MAX_PAGES_PER_POST, "channel_id": channel_id,
                                       "links": json.dumps(links)})
    return cursor.rowcount  # the rows this INSERT added (total_changes would count its triggers too)


async def follow_domains(conn: Connection, domains: Sequence[str], now: str) -> int:
    """Make ``domains`` the followed ones ([pages] follow): links saved from now on are queued
    as they are saved; the archived links of a domain followed anew are queued now, and a
    domain no longer followed is forgotten (following it again queues its links again).
    Returns how many pages joined the queue."""
    return await conn.run(_follow_domains, list(dict.fromkeys(domains)), now)


def _follow_domains(db: sqlite3.Connection, domains: list[str], now: str) -> int:
    wanted = json.dumps(domains)
    followed = {row[0] for row in db.execute("SELECT domain FROM followed_domains")}
    db.execute("DELETE FROM followed_domains WHERE domain NOT IN (SELECT value FROM json_each(?))", (wanted,))
    new = [domain for domain in domains if domain not in followed]
    if not new:
        return 0
    db.executemany("INSERT INTO followed_domains (domain, since) VALUES (?, ?)", [(d, now) for d in new])
    cursor = db.execute(_QUEUE_ARCHIVED, {"now": now, "per_post": MAX_PAGES_PER_POST, "domains": json.dumps(new)})
    return cursor.rowcount


async def requeue_stale(conn: Connection, fetched_before: str) -> int:
    """Queue again the archived pages last fetched before ``fetched_before``."""
    cursor = await conn.execute(
        "UPDATE pages SET status = 'pending', next_attempt_at = NULL WHERE status = 'ok' AND fetched_at < ?",
        (fetched_before,),
    )
    return cursor.rowcount


async def requeue_pages(
    conn: Connection, urls: Sequence[str] = (), status: str | None = None
) -> int:
    """Queue pages again, by URL or by status; their attempt count starts over."""
    cursor = await conn.execute(
        """
        UPDATE pages SET status = 'pending', attempts = 0, next_attempt_at = NULL
        WHERE url IN (SELECT value FROM json_each(?)) OR status = ?
        """,
        (json.dumps(list(urls)), status),
    )
    return cursor.rowcount


async def start_extraction(conn: Connection, url: str) -> int:
    """Count one more start of the page's extraction (before it runs); the starts so far."""
    await conn.execute("UPDATE pages SET extract_starts = extract_starts + 1 WHERE url = ?", (url,))
    rows = await conn.execute_fetchall("SELECT extract_starts FROM pages WHERE url = ?", (url,))
    return int(rows[0]["extract_starts"]) if rows else 1


async def save_extraction_done(conn: Connection, url: str) -> None:
    """The page's extraction finished (or was given up): its count starts over."""
    await conn.execute("UPDATE pages SET extract_starts = 0 WHERE url = ?", (url,))


def release_pages(url: str) -> str:
    """SQL: the page at ``url`` (a parameter) and every other language version of its release."""
    return (f"(SELECT {url} UNION SELECT rv.url FROM pages rv "
            f"WHERE rv.release_id = (SELECT ro.release_id FROM pages ro WHERE ro.url = {url}))")


async def save_release(conn: Connection, url: str, site: str, number: str, lang: str | None,
                       versions: Sequence[tuple[str, str, str]], now: str) -> int:
    """Make the archived page at ``url`` the ``lang`` version of release ``number`` of ``site``
    (a page already in a release stays in it), and queue its other ``versions`` (language,
    URL, host) that the archive does not hold yet. Returns how many pages joined the queue."""
    await conn.execute("INSERT INTO releases (site, number, first_seen_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (site, number) DO NOTHING", (site, number, now))
    await conn.execute(
        """UPDATE pages SET release_id = coalesce(release_id, (SELECT id FROM releases WHERE site = ? AND number = ?)),
               release_lang = coalesce(release_lang, ?) WHERE url = ?""", (site, number, lang, url))
    joining = await get_unknown_pages(conn, [target for _, target, _ in versions])
    await conn.executemany(
        """
        INSERT INTO pages (url, host, first_seen_at, release_id, release_lang, found_by)
        SELECT ?, ?, ?, release_id, ?, 'translation' FROM pages WHERE url = ?
        ON CONFLICT (url) DO UPDATE SET release_id = coalesce(pages.release_id, excluded.release_id),
            release_lang = coalesce(pages.release_lang, excluded.release_lang)
            WHERE pages.release_id IS NULL OR pages.release_lang IS NULL
        """,
        [(target, host, now, language, url) for language, target, host in versions])
    return len(joining)


async def get_release_of(conn: Connection, url: str) -> int | None:
    """The release the page at ``url`` is a language version of, if any."""
    rows = await conn.execute_fetchall("SELECT release_id FROM pages WHERE url = ?", (url,))
    return rows[0][0] if rows else None


async def get_release_versions(conn: Connection, url: str) -> list[dict[str, Any]]:
    """The other language versions of the release of the page at ``url``: language, state (ok,
    not translated, pending, blocked, failed), URL, title, date and newest text."""
    rows = await conn.execute_fetchall(
        """SELECT v.lang, v.state, v.url, v.title, v.published_at, g.text FROM release_versions v
           JOIN pages g ON g.url = v.url
           WHERE v.release_id = (SELECT release_id FROM pages WHERE url = ?) AND v.url != ?
           ORDER BY v.lang, v.url""", (url, url))
    return [dict(row) for row in rows]


async def get_unknown_pages(conn: Connection, urls: Sequence[str]) -> list[str]:
    """Those of ``urls`` that the archive holds no page for (neither queued nor fetched), in order."""
    rows = await conn.execute_fetchall(
        "SELECT value FROM json_each(?) WHERE value NOT IN (SELECT url FROM pages) ORDER BY key",
        (json.dumps(list(urls)),),
    )
    return [row["value"] for row in rows]


async def get_page_text(conn: Connection, url: str) -> str | None:
    """Title and text of the newest archived version, as one string (for comparing matches)."""
    cursor = await conn.execute(
        "SELECT title, text FROM page_versions WHERE url = ? ORDER BY version DESC LIMIT 1", (url,)
    )
    row = await cursor.fetchone()
    return "\n".join(part for part in row if part) if row else None


async def get_due_pages(conn: Connection, now: str, limit: int, latest: str | None = None) -> list[PageTask]:
    """Pending pages, and blocked or failed ones whose retry time has come, or lies past ``latest``
    (no wait is that long: the time was set by a clock that ran ahead and came back).

    Fair between posts: each post's oldest due page first, then each post's second, and so on
    (the language versions of a release take their turns as one more post).
    """
    rows = await conn.execute_fetchall(
        """
        SELECT url, host, status, attempts, version, found_by FROM (
            SELECT d.*, row_number() OVER (PARTITION BY d.origin ORDER BY d.first_seen_at, d.url) AS turn
            FROM (
                SELECT p.url, p.host, p.status, p.attempts, p.version, p.first_seen_at, p.found_by,
                    coalesce((SELECT l.channel_id || '/' || l.post_id FROM links l WHERE l.url = p.url LIMIT 1),
                             'release ' || p.release_id) AS origin
                FROM pages p
                WHERE p.status = 'pending'
                    OR (p.status IN ('blocked', 'failed') AND p.next_attempt_at IS NOT NULL
                        AND (p.next_attempt_at <= ? OR p.next_attempt_at > ?))
            ) AS d
        ) AS due
        ORDER BY turn, first_seen_at, url
        LIMIT ?
        """,
        (now, latest or "9999", limit),
    )
    return [PageTask(*row) for row in rows]


async def save_page_capture(
    conn: Connection, task: PageTask, capture: PageCapture, now: str
) -> bool:
    """Record a successful fetch; a new version only when the extracted content changed."""
    cursor = await conn.execute(
        "SELECT content_hash FROM page_versions WHERE url = ? ORDER BY version DESC LIMIT 1", (task.url,)
    )
    latest = await cursor.fetchone()
    changed = latest is None or latest["content_hash"] != capture.content_hash()
    version = task.version + 1 if changed else task.version
    if changed:
        await conn.execute(
            """
            INSERT INTO page_versions (url, version, fetched_at, final_url, http_status, headers, raw, size,
                sha256, content_hash, title, published_at, lang, text, fetched_with)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (task.url, version, now, capture.final_url, capture.http_status,
             json.dumps(dict(capture.headers), ensure_ascii=False), zlib.compress(capture.raw),
             len(capture.raw), capture.sha256, capture.content_hash(), capture.title,
             capture.published_at, capture.lang, capture.text, capture.fetched_with),
        )
        await conn.run(append_records, [("page", f"{version}#{task.url}",
                                         page_content(task.url, version, capture.sha256, capture.content_hash()))], now)
    await conn.execute(
        """
        UPDATE pages SET status = 'ok', final_url = ?, redirects = ?, http_status = ?, content_type = ?,
            fetched_at = ?, sha256 = ?, title = ?, published_at = ?, lang = ?, text = ?, doc_number = ?,
            extractor = ?, version = ?, error = NULL, attempts = 0, next_attempt_at = NULL, fetched_with = ?
        WHERE url = ?
        """,
        (capture.final_url, json.dumps(list(capture.redirects)) if capture.redirects else None,
         capture.http_status, capture.content_type, now, capture.sha256, capture.title,
         capture.published_at, capture.lang, capture.text, capture.doc_number, capture.extractor,
         version, capture.fetched_with, task.url),
    )
    await save_attachments(conn, task.url, capture.attachments)
    return changed


async def save_page_problem(
    conn: Connection, url: str, status: str, error: str, now: str,
    *, http_status: int | None = None, retry_at: str | None = None,
) -> None:
    """A fetch that gave no content: blocked, gone or failed, with the next try (or none)."""
    await conn.execute(
        """
        UPDATE pages SET status = ?, error = ?, fetched_at = ?, http_status = coalesce(?, http_status),
            attempts = attempts + 1, next_attempt_at = ?
        WHERE url = ?
        """,
        (status, error, now, http_status, retry_at, url),
    )


async def save_attachments(conn: Connection, page_url: str, attachments: Sequence[Attachment]) -> None:
    await conn.executemany(
        """
        INSERT INTO page_attachments (page_url, url, title) VALUES (?, ?, ?)
        ON CONFLICT (page_url, url) DO NOTHING
        """,
        [(page_url, a.url, a.title) for a in attachments],
    )


async def get_due_attachments(conn: Connection, limit: int) -> list[tuple[str, str]]:
    """``(page_url, url)`` of attachments not fetched yet."""
    rows = await conn.execute_fetchall(
        "SELECT page_url, url FROM page_attachments WHERE status = 'pending' ORDER BY page_url, url LIMIT ?",
        (limit,),
    )
    return [(row["page_url"], row["url"]) for row in rows]


async def save_attachment(
    conn: Connection, page_url: str, url: str, now: str, *, status: str,
    content_type: str | None = None, raw: bytes | None = None, sha256: str | None = None, error: str | None = None,
    text: str | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE page_attachments SET status = ?, content_type = ?, size = ?, sha256 = ?, raw = ?,
            fetched_at = ?, error = ?, text = ?, attempts = attempts + 1
        WHERE page_url = ? AND url = ?
        """,
        (status, content_type, len(raw) if raw is not None else None, sha256,
         zlib.compress(raw) if raw is not None else None, now, error, text, page_url, url),
    )


async def get_attachments(conn: Connection, page_url: str) -> list[dict[str, Any]]:
    """The documents of one page: what ``export --with-pages`` lists (the bytes stay in the archive)."""
    rows = await conn.execute_fetchall(
        """SELECT url, title, status, content_type, size, sha256, fetched_at FROM page_attachments
           WHERE page_url = ? ORDER BY url""", (page_url,))
    return [{**dict(row), "file_name": _file_name(row["url"])} for row in rows]


async def iter_attachments(conn: Connection) -> AsyncIterator[dict[str, Any]]:
    """Every fetched attachment with its bytes, for WARC export; one in memory at a time."""
    keys = await conn.execute_fetchall("SELECT page_url, url FROM page_attachments WHERE status = 'ok' "
                                       "ORDER BY page_url, url")
    for page_url, url in [(row[0], row[1]) for row in keys]:
        rows = await conn.execute_fetchall(
            "SELECT url, content_type, raw, fetched_at FROM page_attachments WHERE page_url = ? AND url = ?",
            (page_url, url))
        if rows and rows[0]["raw"] is not None:
            row = rows[0]
            yield {"url": row["url"], "final_url": None, "http_status": 200, "fetched_at": row["fetched_at"],
                   "headers": {"Content-Type": row["content_type"] or "application/octet-stream"},
                   "raw": zlib.decompress(row["raw"])}


def _file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


async def get_robots(conn: Connection, host: str) -> tuple[str, int | None, str | None] | None:
    """``(fetched_at, http_status, body)`` of the cached robots.txt of ``host``."""
    cursor = await conn.execute("SELECT fetched_at, http_status, body FROM robots WHERE host = ?", (host,))
    row = await cursor.fetchone()
    return (row["fetched_at"], row["http_status"], row["body"]) if row else None


async def save_robots(conn: Connection, host: str, http_status: int | None, body: str | None,
                      now: str) -> None:
    await conn.execute(
        """
        INSERT INTO robots (host, fetched_at, http_status, body) VALUES (?, ?, ?, ?)
        ON CONFLICT (host) DO UPDATE SET fetched_at = excluded.fetched_at,
            http_status = excluded.http_status, body = excluded.body
        """,
        (host, now, http_status, body),
    )


async def list_pages(conn: Connection, status: str | None, limit: int) -> list[PageRow]:
    """Pages, most recently fetched first, optionally of one status."""
    rows = await conn.execute_fetchall(
        """
        SELECT url, status, fetched_at, title, error, attempts, version FROM pages
        WHERE ? IS NULL OR status = ?
        ORDER BY coalesce(fetched_at, first_seen_at) DESC, url LIMIT ?
        """,
        (status, status, limit),
    )
    return [PageRow(**dict(row)) for row in rows]


async def count_pages(conn: Connection) -> dict[str, int]:
    """How many pages are in each status."""
    rows = await conn.execute_fetchall("SELECT status, count(*) AS pages FROM pages GROUP BY status")
    return {row["status"]: row["pages"] for row in rows}


async def get_page_problems(conn: Connection, limit: int = 5) -> list[tuple[str, str, str, int]]:
    """``(host, status, error, pages)`` of pages not archived, the commonest problems first.

    An error that starts with its page's URL is counted without it, so that one cause on
    many pages of a host is one line.
    """
    rows = await conn.execute_fetchall(
        """
        SELECT host, status,
            CASE WHEN substr(error, 1, length(url) + 2) = url || ': ' THEN substr(error, length(url) + 3)
                 ELSE error END AS reason,
            count(*) AS pages
        FROM pages WHERE status IN ('failed', 'blocked') AND error IS NOT NULL
        GROUP BY host, status, reason ORDER BY pages DESC, host, reason LIMIT ?
        """,
        (limit,),
    )
    return [(row["host"], row["status"], row["reason"], row["pages"]) for row in rows]


async def get_page_history(conn: Connection, url: str) -> list[PageVersion]:
    """Every archived version of the page at ``url``, oldest first; [] when it has none."""
    rows = await conn.execute_fetchall(
        """SELECT version, fetched_at, title, published_at, text, content_hash, sha256
           FROM page_versions WHERE url = ? ORDER BY version""", (url,))
    return [PageVersion(*row) for row in rows]


async def iter_page_versions(conn: Connection) -> AsyncIterator[dict[str, Any]]:
    """Every stored version with its decompressed body, for WARC export; one row in memory at a time."""
    cursor = await conn.execute("SELECT url, version FROM page_versions ORDER BY url, version")
    keys = [(row["url"], row["version"]) for row in await cursor.fetchall()]
    for url, version in keys:
        cursor = await conn.execute(
            """SELECT url, version, fetched_at, final_url, http_status, headers, raw, sha256
               FROM page_versions WHERE url = ? AND version = ?""",
            (url, version),
        )
        row = await cursor.fetchone()
        if row is not None:
            yield {**dict(row), "headers": json.loads(row["headers"] or "{}"), "raw": zlib.decompress(row["raw"])}


async def get_pages_since(conn: Connection, since: str) -> list[PageText]:
    """``(url, version, title, text)`` of archived pages published (or fetched) since ``since``."""
    rows = await conn.execute_fetchall(
        """
        SELECT url, version, title, text FROM pages
        WHERE status = 'ok' AND coalesce(published_at, fetched_at) >= ? ORDER BY url
        """,
        (since,),
    )
    return [PageText(**dict(row)) for row in rows]
