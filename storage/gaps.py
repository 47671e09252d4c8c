"""What the archive knows it does not have, per channel: ids never seen, posts it cannot show."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

PREVIEW_DISABLED = "no public web preview"  # in the error a channel without one leaves


@dataclass(frozen=True, slots=True)
class Gaps:
    """One channel's gaps: ``missing`` are (first, last) ranges of ids between the oldest and the
    newest archived post that no source ever showed (album members and ids confirmed gone are
    not missing); ``absent`` were checked and are gone (deleted before legation saw them)."""

    channel: str
    oldest: int | None
    newest: int | None
    missing: list[tuple[int, int]] = field(default_factory=list)
    absent: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    unviewable: list[int] = field(default_factory=list)
    unparsed: list[int] = field(default_factory=list)
    preview_disabled: bool = False

    @property
    def missing_ids(self) -> int:
        return sum(last - first + 1 for first, last in self.missing)


def get_gaps(db: sqlite3.Connection, channel: str) -> Gaps | None:
    """The gaps of ``channel`` (any case); None when the archive holds no such channel."""
    row = db.execute("SELECT id, username, last_error FROM channels WHERE username = ? COLLATE NOCASE",
                     (channel,)).fetchone()
    if row is None:
        return None
    channel_id, username, last_error = row
    ids = [r[0] for r in db.execute("SELECT post_id FROM posts WHERE channel_id = ? ORDER BY post_id", (channel_id,))]
    seen = set(ids)
    seen.update(r[0] for r in db.execute(  # an album is one post of the preview; its members are its items
        """SELECT CAST(json_extract(m.value, '$.post_id') AS INTEGER) FROM posts p, json_each(p.media) m
           WHERE p.channel_id = ? AND p.grouped_id IS NOT NULL AND json_extract(m.value, '$.post_id') IS NOT NULL""",
        (channel_id,)))
    unparsed = [r[0] for r in db.execute("SELECT post_id FROM post_problems WHERE channel_id = ? ORDER BY post_id",
                                         (channel_id,))]
    absent = [r[0] for r in db.execute("SELECT post_id FROM post_absences WHERE channel_id = ? ORDER BY post_id",
                                       (channel_id,))]
    seen.update(unparsed)
    seen.update(absent)
    missing: list[tuple[int, int]] = []
    if ids:
        previous = ids[0]
        for post_id in sorted(i for i in seen if ids[0] <= i <= ids[-1]):
            if post_id > previous + 1:
                missing.append((previous + 1, post_id - 1))
            previous = max(previous, post_id)
    return Gaps(
        channel=username, oldest=ids[0] if ids else None, newest=ids[-1] if ids else None, missing=missing,
        absent=absent,
        deleted=[r[0] for r in db.execute("SELECT post_id FROM posts WHERE +channel_id = ? AND deleted_at IS NOT NULL "
                                          "ORDER BY post_id", (channel_id,))],
        unviewable=[r[0] for r in db.execute("SELECT post_id FROM posts WHERE channel_id = ? AND media LIKE "
                                             "'%\"unviewable\"%' ORDER BY post_id", (channel_id,))],
        unparsed=unparsed,
        preview_disabled=bool(last_error and PREVIEW_DISABLED in last_error),
    )


def save_absence(db: sqlite3.Connection, channel_id: int, post_id: int, now: str, detail: str) -> None:
    """A gap's id checked and gone: deleted before legation saw it (not a gap any more)."""
    db.execute("""INSERT INTO post_absences (channel_id, post_id, checked_at, detail) VALUES (?, ?, ?, ?)
                  ON CONFLICT (channel_id, post_id) DO UPDATE SET checked_at = excluded.checked_at,
                  detail = excluded.detail""", (channel_id, post_id, now, detail))
