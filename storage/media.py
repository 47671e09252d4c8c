"""Media of posts: the download queue (``post_media``) and the files (``media_files``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Connection
from storage.evidence import append_records, media_content
from storage.models import MediaSource


@dataclass(frozen=True, slots=True)
class MediaDownload:
    """One media file of one post version, due for download."""

    channel_id: int
    post_id: int
    version: int
    item: int
    role: str
    url: str
    attempts: int
    expired: bool  # the link was last seen longer ago than [media] url_ttl


QUEUE = """
INSERT INTO post_media (channel_id, post_id, version, item, role, url, seen_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (channel_id, post_id, version, item, role) DO UPDATE SET
    url = excluded.url, seen_at = excluded.seen_at,
    -- a fresh link is tried at once: the failure may have been the old link's
    status = CASE WHEN post_media.url != excluded.url THEN 'pending' ELSE post_media.status END
WHERE post_media.status IN ('pending', 'failed', 'expired')
"""


# A download is due: pending, or failed with its next attempt come (one parameter: now).
DUE = "(status = 'pending' OR (status = 'failed' AND next_attempt_at <= ?))"


def queue_media(db: sqlite3.Connection, rows: Sequence[tuple[int, int, int, MediaSource]], seen_at: str) -> None:
    """Queue (or refresh the links of) media not saved yet; ``rows``: (channel, post, version, source).

    Runs inside the transaction that saves the posts (``db`` is the raw sqlite3 connection).
    """
    if rows:
        db.executemany(QUEUE, [(c, p, v, s.item, s.role, s.url, seen_at) for c, p, v, s in rows])


async def get_due_media(conn: Connection, now: str, fresh_since: str, channel_id: int | None,
                        limit: int) -> list[MediaDownload]:
    """Pending and retry-due downloads, oldest first (of one channel when given)."""
    rows = await conn.execute_fetchall(
        """
        SELECT channel_id, post_id, version, item, role, url, attempts, seen_at < ? AS expired
        FROM post_media
        WHERE """ + DUE + """ AND (? IS NULL OR channel_id = ?)
        ORDER BY seen_at, channel_id, post_id, item LIMIT ?
        """,
        (fresh_since, now, channel_id, channel_id, limit),
    )
    return [MediaDownload(**{**dict(row), "expired": bool(row["expired"])}) for row in rows]


async def has_due_media(conn: Connection, channel_id: int, now: str) -> bool:
    """Whether files of the channel wait to be downloaded (their links come fresh with a parsed page)."""
    rows = await conn.execute_fetchall(
        "SELECT 1 FROM post_media WHERE " + DUE + " AND channel_id = ? LIMIT 1", (now, channel_id))
    return bool(rows)


async def save_media_file(conn: Connection, download: MediaDownload, sha256: str, size: int,
                          mime: str | None, width: int | None, height: int | None, path: str, now: str) -> None:
    """The file (once per content) and the media item that it is."""
    cursor = await conn.execute(
        """
        INSERT INTO media_files (sha256, size, mime, width, height, path, first_seen_at)
        VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING
        """,
        (sha256, size, mime, width, height, path, now),
    )
    if cursor.rowcount == 1:  # a file new to the archive: into the evidence chain
        await conn.run(append_records, [("media", sha256, media_content(sha256, size, path))], now)
    await conn.execute(
        """
        UPDATE post_media SET status = 'ok', sha256 = ?, fetched_at = ?, error = NULL, next_attempt_at = NULL,
            attempts = attempts + 1
        WHERE channel_id = ? AND post_id = ? AND version = ? AND item = ? AND role = ?
        """,
        (sha256, now, download.channel_id, download.post_id, download.version, download.item, download.role),
    )


async def save_media_failure(conn: Connection, download: MediaDownload, status: str, error: str,
                             retry_at: str | None) -> None:
    await conn.execute(
        """
        UPDATE post_media SET status = ?, error = ?, attempts = attempts + 1, next_attempt_at = ?
        WHERE channel_id = ? AND post_id = ? AND version = ? AND item = ? AND role = ?
        """,
        (status, error, retry_at, download.channel_id, download.post_id, download.version, download.item,
         download.role),
    )


async def count_media(conn: Connection) -> dict[str, int]:
    """Media items by status, and the files and bytes stored."""
    rows = await conn.execute_fetchall("SELECT status, count(*) AS items FROM post_media GROUP BY status")
    counts = {row["status"]: row["items"] for row in rows}
    cursor = await conn.execute("SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM media_files")
    row = await cursor.fetchone()
    if row is not None and row["files"]:
        counts["files"], counts["bytes"] = row["files"], row["bytes"]
    return counts


async def get_post_media(conn: Connection, channel_id: int, post_id: int) -> list[dict[str, object]]:
    """The newest version's media items with their files, for export."""
    rows = await conn.execute_fetchall(
        """
        SELECT m.item, m.role, m.status, m.sha256, f.path, f.mime, f.width, f.height, m.error
        FROM post_media m JOIN posts p ON p.channel_id = m.channel_id AND p.post_id = m.post_id
            AND p.version = m.version
        LEFT JOIN media_files f ON f.sha256 = m.sha256
        WHERE m.channel_id = ? AND m.post_id = ? ORDER BY m.item, m.role
        """,
        (channel_id, post_id),
    )
    return [{k: v for k, v in dict(row).items() if v is not None} for row in rows]


