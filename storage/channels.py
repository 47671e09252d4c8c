"""Queries on channels: registration, channel info, resume state, sync outcome, status."""

from __future__ import annotations

import json
from dataclasses import astuple

from storage.db import Connection
from storage.models import ChannelInfo, ChannelState, ChannelStatus, NewestPage


async def get_channel_id(conn: Connection, username: str) -> int | None:
    """The channel's row id, if it is archived."""
    cursor = await conn.execute("SELECT id FROM channels WHERE username = ?", (username,))
    row = await cursor.fetchone()
    return int(row["id"]) if row else None


async def get_usernames(conn: Connection) -> list[str]:
    """Every archived channel's username, in alphabetical order."""
    rows = await conn.execute_fetchall("SELECT username FROM channels ORDER BY username COLLATE NOCASE")
    return [row["username"] for row in rows]


async def ensure_channel(conn: Connection, username: str, now: str) -> int:
    """The channel's row id, creating the row on first sight."""
    await conn.execute(
        "INSERT INTO channels (username, added_at) VALUES (?, ?) ON CONFLICT(username) DO NOTHING",
        (username, now),
    )
    cursor = await conn.execute("SELECT id FROM channels WHERE username = ?", (username,))
    row = await cursor.fetchone()
    assert row is not None
    return int(row["id"])


async def get_username_by_telegram_id(conn: Connection, telegram_id: int | None) -> str | None:
    """The archived channel with this numeric Telegram id."""
    if telegram_id is None:
        return None
    cursor = await conn.execute("SELECT username FROM channels WHERE telegram_id = ?", (telegram_id,))
    row = await cursor.fetchone()
    return row["username"] if row else None


async def save_channel_info(
    conn: Connection, channel_id: int, info: ChannelInfo, now: str
) -> None:
    """Record title, description and counters; fields the page lacked keep their old value."""
    await conn.execute(
        """
        UPDATE channels SET
            telegram_id = coalesce(?, telegram_id),
            title = coalesce(?, title),
            description = coalesce(?, description),
            subscribers = coalesce(?, subscribers),
            counters = coalesce(?, counters),
            account_member = coalesce(?, account_member),
            updated_at = ?
        WHERE id = ?
        """,
        (
            info.telegram_id,
            info.title,
            info.description,
            info.subscribers,
            json.dumps(dict(info.counters), sort_keys=True) if info.counters else None,
            info.account_member,
            now,
            channel_id,
        ),
    )


async def get_channel_state(conn: Connection, channel_id: int) -> ChannelState:
    """The resume state of one channel."""
    cursor = await conn.execute(
        """
        SELECT id, username, head_id, tail_id, backfill_done_at, walk_target, walk_cursor,
            recheck_cursor, recheck_until, page_signature, page_lowest_id, page_read_at, telegram_id
        FROM channels WHERE id = ?
        """,
        (channel_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    newest = (NewestPage(row["page_signature"], row["page_lowest_id"], row["page_read_at"])
              if row["page_signature"] is not None else None)
    return ChannelState(row["id"], row["username"], row["head_id"], row["tail_id"], row["backfill_done_at"],
                        row["walk_target"], row["walk_cursor"], row["recheck_cursor"], row["recheck_until"],
                        newest_page=newest, telegram_id=row["telegram_id"])


async def save_channel_state(conn: Connection, state: ChannelState) -> None:
    """Write the resume state; call inside the transaction that saved the posts it describes."""
    await conn.execute(
        """
        UPDATE channels SET head_id = ?, tail_id = ?, backfill_done_at = ?,
            walk_target = ?, walk_cursor = ?, recheck_cursor = ?, recheck_until = ?,
            page_signature = ?, page_lowest_id = ?, page_read_at = ?
        WHERE id = ?
        """,
        (
            state.head_id,
            state.tail_id,
            state.backfill_done_at,
            state.walk_target,
            state.walk_cursor,
            state.recheck_cursor,
            state.recheck_until,
            *(astuple(state.newest_page) if state.newest_page is not None else (None, None, None)),
            state.channel_id,
        ),
    )


async def save_recheck_done(conn: Connection, channel_id: int, now: str) -> None:
    """A re-check sweep reached its end."""
    await conn.execute("UPDATE channels SET recheck_done_at = ? WHERE id = ?", (now, channel_id))


async def get_first_post_since(conn: Connection, channel_id: int, since: str) -> int | None:
    """The lowest archived post id dated on or after ``since``."""
    cursor = await conn.execute(
        "SELECT min(post_id) AS first FROM posts WHERE channel_id = ? AND date >= ?", (channel_id, since)
    )
    row = await cursor.fetchone()
    return row["first"] if row else None


async def get_highest_post_id(conn: Connection, channel_id: int, at_most: int) -> int | None:
    """The highest archived post id of the channel that is at most ``at_most``."""
    rows = await conn.execute_fetchall(
        "SELECT max(post_id) AS id FROM posts WHERE channel_id = ? AND post_id <= ?", (channel_id, at_most))
    return rows[0]["id"] if rows else None


async def count_posts_from(conn: Connection, channel_id: int, post_id: int) -> tuple[int, str | None]:
    """How many archived, undeleted posts have ids from ``post_id`` up, and the oldest date among them."""
    cursor = await conn.execute(
        "SELECT count(*) AS posts, min(date) AS oldest FROM posts"
        " WHERE channel_id = ? AND post_id >= ? AND deleted_at IS NULL", (channel_id, post_id))
    row = await cursor.fetchone()
    return row["posts"], row["oldest"]


async def save_sync_success(conn: Connection, channel_id: int, now: str) -> None:
    """A round finished for this channel: stamp it and clear the last error."""
    await conn.execute(
        "UPDATE channels SET last_sync_at = ?, last_error = NULL, last_error_at = NULL WHERE id = ?",
        (now, channel_id),
    )


async def save_sync_error(
    conn: Connection, channel_id: int, error: str, now: str
) -> None:
    """A round failed for this channel; ``status`` shows the message."""
    await conn.execute(
        "UPDATE channels SET last_error = ?, last_error_at = ? WHERE id = ?",
        (error, now, channel_id),
    )


async def get_status(conn: Connection, day_ago: str) -> list[ChannelStatus]:
    """One row per channel, with post counts (and those dated after ``day_ago``); by username."""
    rows = await conn.execute_fetchall(
        """
        SELECT c.username, c.title,
            (SELECT count(*) FROM posts p WHERE p.channel_id = c.id) AS posts,
            (SELECT max(post_id) FROM posts p WHERE p.channel_id = c.id) AS newest_id,
            (SELECT min(post_id) FROM posts p WHERE p.channel_id = c.id) AS oldest_id,
            c.backfill_done_at, c.last_sync_at, c.last_error, c.last_error_at,
            -- a channel's ids follow its dates: the newest post not deleted is the first one back
            (SELECT date FROM posts p WHERE p.channel_id = c.id AND p.deleted_at IS NULL
             ORDER BY p.post_id DESC LIMIT 1) AS newest_date,
            -- by the date index (the last day only), not by every post of the channel
            (SELECT count(*) FROM posts p WHERE +p.channel_id = c.id AND p.date >= ?) AS posts_last_day,
            (SELECT count(*) FROM post_problems q WHERE q.channel_id = c.id) AS unparsed_posts,
            (SELECT count(*) FROM posts p WHERE p.channel_id = c.id AND p.media LIKE '%"unviewable"%')
                AS unviewable_posts,  -- by its partial index (migration 0025)
            c.account_member
        FROM channels c
        ORDER BY c.username COLLATE NOCASE
        """,
        (day_ago,),
    )
    return [ChannelStatus(**{**dict(row), "account_member": None if row["account_member"] is None
                             else bool(row["account_member"])}) for row in rows]
