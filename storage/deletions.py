"""Queries on deletions: candidates from re-read pages, confirmations, and post events."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from storage.db import Connection
from storage.evidence import append_records, deletion_content


async def get_missing(
    conn: Connection, channel_id: int, low: int, high: int, present: Sequence[int]
) -> list[int]:
    """Archived, undeleted, non-service posts in ``[low, high]`` that are not in ``present``."""
    rows = await conn.execute_fetchall(
        """
        SELECT post_id FROM posts
        WHERE channel_id = ? AND post_id BETWEEN ? AND ? AND deleted_at IS NULL AND service = 0
            AND post_id NOT IN (SELECT value FROM json_each(?))
        ORDER BY post_id
        """,
        (channel_id, low, high, json.dumps(list(present))),
    )
    return [row["post_id"] for row in rows]


async def save_candidates(conn: Connection, channel_id: int, post_ids: Sequence[int], now: str) -> None:
    """Note posts suspected deleted; a pending candidate keeps its first noticed time."""
    await conn.executemany(
        """
        INSERT INTO deletion_candidates (channel_id, post_id, noticed_at) VALUES (?, ?, ?)
        ON CONFLICT (channel_id, post_id) DO NOTHING
        """,
        [(channel_id, post_id, now) for post_id in post_ids],
    )


async def clear_candidates(conn: Connection, channel_id: int, post_ids: Sequence[int]) -> None:
    """These posts were seen: they are not deleted."""
    await conn.execute(
        "DELETE FROM deletion_candidates WHERE channel_id = ? AND post_id IN (SELECT value FROM json_each(?))",
        (channel_id, json.dumps(list(post_ids))),
    )


async def get_candidates(conn: Connection, channel_id: int) -> list[int]:
    """Pending candidates of one channel, oldest noticed first."""
    rows = await conn.execute_fetchall(
        "SELECT post_id FROM deletion_candidates WHERE channel_id = ? ORDER BY noticed_at, post_id",
        (channel_id,),
    )
    return [row["post_id"] for row in rows]


async def get_live_posts(conn: Connection, channel_id: int, post_ids: Sequence[int]) -> list[int]:
    """Those of ``post_ids`` archived and not marked deleted."""
    rows = await conn.execute_fetchall(
        "SELECT post_id FROM posts WHERE channel_id = ? AND deleted_at IS NULL "
        "AND post_id IN (SELECT value FROM json_each(?)) ORDER BY post_id",
        (channel_id, json.dumps(list(post_ids))),
    )
    return [row["post_id"] for row in rows]


async def save_deletion(conn: Connection, channel_id: int, post_id: int, now: str, detail: str) -> None:
    """Confirmed: stamp ``deleted_at`` (data and versions stay), note it, drop the candidate."""
    await conn.execute(
        "UPDATE posts SET deleted_at = ? WHERE channel_id = ? AND post_id = ? AND deleted_at IS NULL",
        (now, channel_id, post_id),
    )
    cursor = await conn.execute(
        "INSERT INTO post_events (channel_id, post_id, kind, at, detail) VALUES (?, ?, 'deleted', ?, ?)",
        (channel_id, post_id, now, detail),
    )
    await conn.run(append_records, [("deletion", f"{channel_id}/{post_id}/{cursor.lastrowid}",
                                     deletion_content(channel_id, post_id, now, detail))], now)
    await clear_candidates(conn, channel_id, [post_id])


async def save_candidate_failure(
    conn: Connection, channel_id: int, post_id: int, error: str, now: str
) -> None:
    """The confirmation failed or was inconclusive: keep the candidate, count the attempt."""
    await conn.execute(
        """
        UPDATE deletion_candidates SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?
        WHERE channel_id = ? AND post_id = ?
        """,
        (now, error, channel_id, post_id),
    )


def save_restorations(db: sqlite3.Connection, channel_id: int, post_ids: Sequence[int], now: str) -> None:
    """Posts marked deleted that are visible again: clear ``deleted_at`` and note it (on the DB thread)."""
    if not post_ids:
        return
    db.executemany(
        "UPDATE posts SET deleted_at = NULL WHERE channel_id = ? AND post_id = ?",
        [(channel_id, post_id) for post_id in post_ids],
    )
    db.executemany(
        "INSERT INTO post_events (channel_id, post_id, kind, at, detail) VALUES (?, ?, 'restored', ?, ?)",
        [(channel_id, post_id, now, "visible again on the channel page") for post_id in post_ids],
    )
