"""Reach over time: a post's view count each time a source reads it, kept compactly.

A reading becomes a point only when the count changed since the last point; and the points
thin as the post ages: at most one an hour in its first FIRST_DAYS days, then one a day (a
newer reading in the same hour or day replaces that slot's point, so the last point is always
the latest count). The first point is never replaced. So a post keeps at most
FIRST_DAYS * 24 + 1 points in its first days and one a day after: at most 78 in its first 30
days (about 3 KB), 31 a month later.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

FIRST_DAYS = 2
HOUR, DAY = 3600, 86400


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def record_reach(db: sqlite3.Connection, channel_id: int, readings: Sequence[tuple[int, str | None, int, bool]],
                 now: str) -> None:
    """Points for ``readings`` (post_id, post date, views, new to the archive) read at ``now``.
    Part of saving posts."""
    inserts: list[tuple[int, int, str, int]] = []
    now_s = _seconds(now)
    for post_id, date, views, new in readings:
        if new:
            inserts.append((channel_id, post_id, now, views))
            continue
        last = db.execute("SELECT at, views FROM post_reach WHERE channel_id = ? AND post_id = ? "
                          "ORDER BY at DESC LIMIT 2", (channel_id, post_id)).fetchall()
        if not last:
            inserts.append((channel_id, post_id, now, views))
            continue
        at, value = last[0]
        if value == views or at >= now:
            continue  # no change (or a reading older than the last point)
        slot = HOUR if date is None or now_s - _seconds(date) <= FIRST_DAYS * DAY else DAY
        if len(last) == 2 and int(_seconds(at) // slot) == int(now_s // slot):
            db.execute("UPDATE post_reach SET at = ?, views = ? WHERE channel_id = ? AND post_id = ? AND at = ?",
                       (now, views, channel_id, post_id, at))  # the slot's point is the newest reading
        else:
            inserts.append((channel_id, post_id, now, views))
    db.executemany("INSERT OR IGNORE INTO post_reach (channel_id, post_id, at, views) VALUES (?, ?, ?, ?)", inserts)


def get_reach(db: sqlite3.Connection, channel: str, post_id: int) -> list[tuple[str, int]]:
    """``(at, views)`` of a post, oldest first."""
    return [(row[0], row[1]) for row in db.execute(
        """SELECT r.at, r.views FROM post_reach r JOIN channels c ON c.id = r.channel_id
           WHERE c.username = ? COLLATE NOCASE AND r.post_id = ? ORDER BY r.at""", (channel, post_id))]
