"""Queries on alerts: recording matches once, reading what to deliver, marking the outcome."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from storage.db import Connection
from storage.models import AlertRow, SavedVersion
from storage.pages import release_pages

ALERT_COLUMNS = """
    a.id, a.rule, a.kind, c.username, a.post_id, a.page_url, a.version, a.terms, a.context,
    a.created_at, a.delivered_at, a.attempts, a.last_error, p.date,
    coalesce(g.title, (SELECT group_concat(gp.title, ' | ') FROM links l JOIN pages gp ON gp.url = l.url
                       WHERE l.channel_id = a.channel_id AND l.post_id = a.post_id AND gp.title IS NOT NULL))
"""
ALERT_JOINS = """
    FROM alerts a
    LEFT JOIN channels c ON c.id = a.channel_id
    LEFT JOIN posts p ON p.channel_id = a.channel_id AND p.post_id = a.post_id
    LEFT JOIN pages g ON g.url = a.page_url
"""


async def save_alert(
    conn: Connection, *, rule: str, kind: str, version: int, terms: Sequence[str],
    context: str | None, now: str, channel_id: int | None = None, post_id: int | None = None,
    page_url: str | None = None, target: str | None = None,
) -> bool:
    """Record a match; False if this rule already alerted on this target version. The target is
    the post, or the page, or (``release:<id>``) a release whichever language version matched."""
    target = target or (f"page:{page_url}" if page_url else f"post:{channel_id}:{post_id}")
    cursor = await conn.execute(
        """
        INSERT INTO alerts (rule, kind, target, channel_id, post_id, page_url, version, terms, context, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (rule, kind, target, version) DO NOTHING
        """,
        (rule, kind, target, channel_id, post_id, page_url, version, json.dumps(list(terms), ensure_ascii=False),
         context, now),
    )
    return cursor.rowcount == 1


async def get_saved_versions(
    conn: Connection, channel_id: int, post_ids: Sequence[int], seen_at: str
) -> list[SavedVersion]:
    """The versions written at ``seen_at``, each with the text of the version before it."""
    rows = await conn.execute_fetchall(
        """
        SELECT p.post_id, p.version, p.date, p.text, prev.text AS previous_text
        FROM posts p
        LEFT JOIN post_history prev
            ON prev.channel_id = p.channel_id AND prev.post_id = p.post_id AND prev.version = p.version - 1
        WHERE p.channel_id = ? AND p.version_seen_at = ? AND p.post_id IN (SELECT value FROM json_each(?))
        ORDER BY p.post_id
        """,
        (channel_id, seen_at, json.dumps(list(post_ids))),
    )
    return [SavedVersion(**dict(row)) for row in rows]


async def get_version_texts(conn: Connection, channel_id: int, post_id: int) -> list[tuple[int, str]]:
    """``(version, text)`` of every version of a post, newest first."""
    rows = await conn.execute_fetchall(
        "SELECT version, text FROM post_versions WHERE channel_id = ? AND post_id = ? AND text IS NOT NULL "
        "ORDER BY version DESC",
        (channel_id, post_id),
    )
    return [(row["version"], row["text"]) for row in rows]


async def get_echoed_statements(conn: Connection, channel_id: int, post_id: int) -> list[tuple[str, int, str, str]]:
    """``(channel, post id, kind, text)`` of the earlier posts a post repeats (echo_pairs)."""
    rows = await conn.execute_fetchall(
        """SELECT c.username, e.echo_post_id, e.kind, p.text FROM echo_pairs e
           JOIN channels c ON c.id = e.echo_channel_id
           JOIN posts p ON p.channel_id = e.echo_channel_id AND p.post_id = e.echo_post_id
           WHERE e.channel_id = ? AND e.post_id = ? AND p.text IS NOT NULL ORDER BY p.date""",
        (channel_id, post_id))
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def get_page_linkers(conn: Connection, url: str) -> list[tuple[str, int, str | None]]:
    """``(channel username, post id, post date)`` of the posts that link a page, or another
    language version of its release."""
    rows = await conn.execute_fetchall(
        f"SELECT DISTINCT username, post_id, post_date FROM post_pages WHERE url IN {release_pages(':url')} "
        "ORDER BY post_date DESC",
        {"url": url},
    )
    return [(row["username"], row["post_id"], row["post_date"]) for row in rows]


async def get_due_alerts(conn: Connection, now: str, limit: int = 200, latest: str | None = None) -> list[AlertRow]:
    """Undelivered alerts never tried, or whose retry time has come or lies past ``latest`` (a
    clock that ran ahead set it); oldest first."""
    rows = await conn.execute_fetchall(
        f"""SELECT {ALERT_COLUMNS} {ALERT_JOINS}
        WHERE a.delivered_at IS NULL
            AND ((a.attempts = 0 AND a.next_attempt_at IS NULL) OR a.next_attempt_at <= ?
                 OR a.next_attempt_at > ?)
        ORDER BY a.created_at, a.id LIMIT ?""",
        (now, latest or "9999", limit),
    )
    return [_row(r) for r in rows]


async def list_alerts(conn: Connection, undelivered: bool, limit: int) -> list[AlertRow]:
    """Newest first; with ``undelivered`` only those not sent yet."""
    rows = await conn.execute_fetchall(
        f"""SELECT {ALERT_COLUMNS} {ALERT_JOINS}
        WHERE (? = 0 OR a.delivered_at IS NULL)
        ORDER BY a.created_at DESC, a.id DESC LIMIT ?""",
        (int(undelivered), limit),
    )
    return [_row(r) for r in rows]


async def save_delivered(conn: Connection, ids: Sequence[int], now: str) -> None:
    await conn.execute(
        "UPDATE alerts SET delivered_at = ?, attempts = attempts + 1, last_error = NULL, next_attempt_at = NULL "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (now, json.dumps(list(ids))),
    )


async def save_delivery_failure(
    conn: Connection, ids: Sequence[int], error: str, retry_at: str | None
) -> None:
    """Count the attempt; ``retry_at`` None means no more tries."""
    await conn.execute(
        "UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (error, retry_at, json.dumps(list(ids))),
    )


async def get_undelivered_summary(conn: Connection,
                                  rules: Sequence[str] | None = None) -> tuple[int, str | None, int]:
    """``(undelivered, oldest created_at, failed attempts among them)``, of ``rules`` only if given
    (alerts of a rule with nowhere to send them are recorded, not pending)."""
    cursor = await conn.execute(
        "SELECT count(*) AS pending, min(created_at) AS oldest, sum(CASE WHEN attempts > 0 THEN 1 ELSE 0 END) AS failing FROM alerts "
        "WHERE delivered_at IS NULL "
        "AND (? IS NULL OR rule IN (SELECT value FROM json_each(?)))",
        (None if rules is None else 1, json.dumps(list(rules or []))),
    )
    row = await cursor.fetchone()
    return (int(row["pending"]), row["oldest"], int(row["failing"] or 0)) if row else (0, None, 0)


def _row(row: Any) -> AlertRow:
    values = list(row)
    values[7] = tuple(json.loads(values[7]))
    return AlertRow(*values)
