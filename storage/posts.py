"""Queries on posts: saving a batch with versions and links, reading them back."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from storage.db import Connection
from storage.deletions import save_restorations
from storage.echoes import index_echoes
from storage.evidence import append_records, post_content
from storage.media import queue_media
from storage.models import MediaSource, Post, PostEvent, PostText, PostVersion, SaveResult
from storage.pages import queue_saved_links
from storage.reach import record_reach

POST_COLUMNS = (
    "channel_id", "post_id", "date", "text", "html", "views", "author", "edited", "forwarded_from",
    "forwarded_from_url", "reply_to", "reply_to_url", "grouped_id", "media", "link_preview", "service",
    "content_hash", "version", "first_seen_at", "last_seen_at", "buttons", "version_seen_at", "search_key",
)
# Up to this many rows per statement: SQLite before 3.32 (Ubuntu 20.04) takes 999 parameters.
UPSERT_ROWS = 999 // len(POST_COLUMNS)
UPSERT_POSTS_CONFLICT = """
ON CONFLICT (channel_id, post_id) DO UPDATE SET
    date = excluded.date,
    text = excluded.text,
    html = excluded.html,
    views = coalesce(excluded.views, posts.views),
    author = excluded.author,
    edited = excluded.edited,
    forwarded_from = excluded.forwarded_from,
    forwarded_from_url = excluded.forwarded_from_url,
    reply_to = excluded.reply_to,
    reply_to_url = excluded.reply_to_url,
    grouped_id = excluded.grouped_id,
    media = excluded.media,
    link_preview = excluded.link_preview,
    service = excluded.service,
    content_hash = excluded.content_hash,
    version = excluded.version,
    last_seen_at = excluded.last_seen_at,
    buttons = excluded.buttons,
    version_seen_at = excluded.version_seen_at
"""
# search_key is not updated: a new text or date takes a fresh key in the update trigger (0015).


@functools.cache
def _upsert_posts_sql(rows: int) -> str:
    row = "(" + ", ".join("?" * len(POST_COLUMNS)) + ")"
    return (f"INSERT INTO posts ({', '.join(POST_COLUMNS)}) VALUES " + ", ".join([row] * rows)
            + UPSERT_POSTS_CONFLICT)


def _upsert_posts(db: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert or update ``rows`` (POST_COLUMNS each), many to a statement.

    One statement, not one per row: the search triggers write to FTS5, which flushes its
    pending terms to a new segment at the start of every statement that writes in a
    transaction; a statement per post made a segment per post (a third of the save time).
    """
    last = {(row[0], row[1]): row for row in rows}  # a post twice in a batch: its last copy (as
    rows = list(last.values())                        # SQLite's upsert row by row ends; PostgreSQL refuses)
    for start in range(0, len(rows), UPSERT_ROWS):
        chunk = rows[start:start + UPSERT_ROWS]
        db.execute(_upsert_posts_sql(len(chunk)), [value for row in chunk for value in row])

# The newest version lives in posts only; the one an edit supersedes moves to post_history
# (post_versions is the view of both: migration 0016).
SUPERSEDE = """
INSERT INTO post_history (
    channel_id, post_id, version, text, html, media, link_preview, forwarded_from, edited,
    seen_at, content_hash, buttons
)
SELECT channel_id, post_id, version, text, html, media, link_preview, forwarded_from, edited,
       coalesce(version_seen_at, first_seen_at), content_hash, buttons
FROM posts WHERE channel_id = ? AND post_id = ?
"""
INSERT_HISTORY = """
INSERT INTO post_history (
    channel_id, post_id, version, text, html, media, link_preview, forwarded_from, edited,
    seen_at, content_hash, buttons
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

TOUCH_POST = """
UPDATE posts SET views = coalesce(?, views), edited = max(edited, ?), last_seen_at = ?
WHERE channel_id = ? AND post_id = ?
"""

INSERT_LINK = """
INSERT INTO links (channel_id, post_id, url, original, kind, host, ref_channel, ref_post_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (channel_id, post_id, url, kind) DO NOTHING
"""


def _json(value: Any) -> str | None:
    if value is None or value == () or value == []:
        return None
    return _COLUMN_JSON.encode(value)


_COLUMN_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # made once, as json.dumps would per call


class Known(NamedTuple):
    """What the archive holds of a post, as far as saving a new copy of it needs."""

    content_hash: str
    version: int
    deleted_at: str | None


SEARCH_KEY_SLOT = 100_000  # keys per second of post date (migrations 0010, 0015)
SEARCH_KEYS_LOCK = 0x6C6567_6B657973  # PostgreSQL: the advisory lock of search key assignment
SEARCH_KEY_SLOTS = f"""
SELECT slot.base, (SELECT max(search_key) FROM posts
                   WHERE search_key >= slot.base AND search_key < slot.base + {SEARCH_KEY_SLOT}) AS last
FROM (SELECT key, coalesce(CAST(strftime('%s', value) AS INTEGER), 0) * {SEARCH_KEY_SLOT} AS base
      FROM json_each(?)) AS slot
ORDER BY slot.key
"""


def _search_keys(db: sqlite3.Connection, dates: Sequence[str | None]) -> list[int]:
    """Search keys for new posts of these dates, in order, as the insert trigger of migration
    0015 would give them one row at a time: the next free key of the post's second, or once
    that second's 100,000 keys are taken, one below every key. One query for the batch."""
    if getattr(db, "engine", "sqlite") == "postgresql":  # several workers: one at a time takes keys, to its commit
        db.execute_native("SELECT pg_advisory_xact_lock(%s)", (SEARCH_KEYS_LOCK,))  # type: ignore[attr-defined]
    last_in: dict[int, int | None] = {}  # slot base -> its highest key taken
    bases: list[int] = []
    for row in db.execute(SEARCH_KEY_SLOTS, (json.dumps(list(dates)),)):
        bases.append(row["base"])
        last_in[row["base"]] = row["last"]
    lowest: int | None = None  # the lowest key taken (read once a full second needs it)
    keys: list[int] = []
    for base in bases:
        last = last_in[base]
        if last is None:
            key = base
        elif last + 1 < base + SEARCH_KEY_SLOT:
            key = last + 1
        else:
            if lowest is None:
                lowest = min([db.execute("SELECT min(search_key) FROM posts").fetchone()[0] or 0, *keys])
            key = min(lowest, 0) - 1
        keys.append(key)
        if lowest is not None:
            lowest = min(lowest, key)
        slot = key - key % SEARCH_KEY_SLOT  # the slot this key lies in, as later posts of the batch see it
        if slot in last_in:
            taken = last_in[slot]
            last_in[slot] = key if taken is None else max(taken, key)
    return keys


def _versions_of(db: sqlite3.Connection, channel_id: int,
                 post_ids: Sequence[int]) -> dict[int, Known]:
    """What is archived of those of ``post_ids`` that are, by post id."""
    rows = db.execute(
        """
        SELECT post_id, content_hash, version, deleted_at FROM posts
        WHERE channel_id = ? AND post_id IN (SELECT value FROM json_each(?))
        """,
        (channel_id, json.dumps(list(post_ids))),
    ).fetchall()
    return {row["post_id"]: Known(row["content_hash"], row["version"], row["deleted_at"]) for row in rows}


async def save_posts(
    conn: Connection, channel_id: int, posts: Sequence[Post], seen_at: str, read_at: str | None = None
) -> SaveResult:
    """Insert new posts, version changed ones, touch unchanged ones, restore deleted ones.

    ``read_at`` is when the source read the posts: a deletion recorded after that (a live
    update that came while the page was in flight) wins over the page, which is older news.
    Call inside a transaction, with the resume state that the batch advances. The whole
    batch runs on the connection's thread in one hop.
    """
    return await conn.run(_save_posts, channel_id, posts, seen_at, read_at)


def _save_posts(db: sqlite3.Connection, channel_id: int, posts: Sequence[Post], seen_at: str,
                read_at: str | None = None) -> SaveResult:
    known = _versions_of(db, channel_id, [p.post_id for p in posts])
    fresh = {p.post_id for p in posts} - set(known)  # new to the archive: their reach starts here
    newer = {post_id for post_id, was in known.items()
             if was.deleted_at is not None and read_at is not None and was.deleted_at >= read_at}
    posts = [post for post in posts if post.post_id not in newer]
    restored = sorted(post_id for post_id, was in known.items()
                      if was.deleted_at is not None and post_id not in newer)
    upserts: list[tuple[Any, ...]] = []
    new_at: list[int] = []  # where in upserts the posts new to the archive are
    made: list[int] = []  # the version numbers written
    superseded: list[tuple[int, int]] = []  # archived newest versions that an edit replaces
    in_batch: dict[int, tuple[Any, ...]] = {}  # versions written by this batch, as history rows
    history: list[tuple[Any, ...]] = []  # ... and those of them that a later copy in the batch replaces
    touches: list[tuple[Any, ...]] = []
    relinked: list[Post] = []
    files: list[tuple[int, int, int, MediaSource]] = []
    chained: list[tuple[str, str, str]] = []  # evidence chain records of the versions written
    for post in posts:
        digest = post.content_hash()
        previous = known.get(post.post_id)
        if previous is not None and (previous.content_hash == digest or post.unviewable):
            # Unchanged; or the source cannot show the post now, which says nothing of its content.
            touches.append((post.views, int(post.edited), seen_at, channel_id, post.post_id))
            if not post.unviewable:  # fresh links for files not saved yet
                files += [(channel_id, post.post_id, previous.version, source) for source in post.media_sources]
            continue
        version = 1 if previous is None else previous.version + 1
        media, preview, buttons = _json(list(post.media)), _json(post.link_preview), _json(list(post.buttons))
        if previous is None and post.post_id not in in_batch:
            new_at.append(len(upserts))
        upserts.append(_post_row(channel_id, post, media, preview, digest, version, seen_at)
                       + (buttons, seen_at, None))
        if post.post_id in in_batch:
            history.append(in_batch[post.post_id])
        elif previous is not None:
            superseded.append((channel_id, post.post_id))
        in_batch[post.post_id] = (channel_id, post.post_id, version, post.text, post.html, media, preview,
                                  post.forwarded_from, int(post.edited), seen_at, digest, buttons)
        chained.append(("post", f"{channel_id}/{post.post_id}/{version}",
                        post_content(post.text, post.html, media, preview, post.forwarded_from, buttons)))
        made.append(version)
        relinked.append(post)
        files += [(channel_id, post.post_id, version, source) for source in post.media_sources]
        known[post.post_id] = Known(digest, version, None)  # a batch may hold a post twice
    before = _texts_before(db, channel_id, [post_id for _, post_id in superseded])  # for the echo index
    db.executemany(SUPERSEDE, superseded)  # before the upsert overwrites them
    if new_at:  # new posts come with their search keys; a changed one takes a fresh key in its trigger
        for at, key in zip(new_at, _search_keys(db, [upserts[at][2] for at in new_at]), strict=True):
            upserts[at] = upserts[at][:-1] + (key,)
    _upsert_posts(db, upserts)
    db.executemany(INSERT_HISTORY, history)  # after: a post new to the archive has its row now
    append_records(db, chained, seen_at)
    queue_media(db, files, seen_at)
    if touches:
        db.executemany(TOUCH_POST, touches)
    queued = _replace_links(db, channel_id, relinked, [post_id for _, post_id in superseded], seen_at)
    written = {post.post_id: post for post in relinked}  # a post twice in the batch: its last copy
    index_echoes(db, channel_id, [(post_id, post.text, before.get(post_id)) for post_id, post in written.items()],
                 seen_at)
    record_reach(db, channel_id, [(post.post_id, post.date, post.views, post.post_id in fresh)
                                  for post in posts if post.views is not None and not post.unviewable], seen_at)
    if restored:
        save_restorations(db, channel_id, restored, seen_at)
    db.execute(  # a post that parses now is no longer a problem
        "DELETE FROM post_problems WHERE channel_id = ? AND post_id IN (SELECT value FROM json_each(?))",
        (channel_id, json.dumps([p.post_id for p in posts])),
    )
    changed = sum(1 for version in made if version > 1)
    return SaveResult(new=len(made) - changed, changed=changed, unchanged=len(touches),
                      restored=len(restored), queued_pages=queued)


def _texts_before(db: sqlite3.Connection, channel_id: int, post_ids: Sequence[int]) -> dict[int, str | None]:
    """The archived text of posts an edit is about to replace."""
    if not post_ids:
        return {}
    return {row[0]: row[1] for row in db.execute(
        "SELECT post_id, text FROM posts WHERE channel_id = ? AND post_id IN (SELECT value FROM json_each(?))",
        (channel_id, json.dumps(list(post_ids))))}


def _post_row(
    channel_id: int, post: Post, media: str | None, preview: str | None,
    digest: str, version: int, seen_at: str,
) -> tuple[Any, ...]:
    return (
        channel_id, post.post_id, post.date, post.text, post.html, post.views, post.author,
        int(post.edited), post.forwarded_from, post.forwarded_from_url, post.reply_to,
        post.reply_to_url, post.grouped_id, media, preview, int(post.service), digest,
        version, seen_at, seen_at,
    )


def _replace_links(db: sqlite3.Connection, channel_id: int, posts: Sequence[Post], replaced: Sequence[int],
                   seen_at: str) -> int:
    """The links of ``posts`` (new versions) instead of the old ones of ``replaced`` (the ids of those
    the archive held before the batch; a post new to it has no links to remove); the pages they
    point to on followed domains join the queue. Returns how many pages did."""
    if not posts:
        return 0
    newest = {post.post_id: post for post in posts}  # a post twice in the batch: its last copy's links
    if replaced:
        db.execute(
            "DELETE FROM links WHERE channel_id = ? AND post_id IN (SELECT value FROM json_each(?))",
            (channel_id, json.dumps(list(replaced))),
        )
    rows: list[tuple[Any, ...]] = []
    saved: dict[tuple[int, str, str], tuple[int, str, str | None]] = {}  # to queue, as links keeps them: once a kind
    for post in newest.values():
        for link in post.links:
            rows.append((channel_id, post.post_id, link.url, link.original, link.kind, link.host,
                         link.ref_channel, link.ref_post_id))
            if link.ref_post_id is None:  # a t.me post is not a page to fetch
                saved.setdefault((post.post_id, link.url, link.kind), (post.post_id, link.url, link.host))
    db.executemany(INSERT_LINK, rows)
    return queue_saved_links(db, channel_id, list(saved.values()), seen_at) if saved else 0


PROBLEM_RETRY_BASE = 3600  # a post that did not parse is tried again after 1 h, 2 h, 4 h, ...
PROBLEM_RETRY_MAX = 7 * 86400


async def save_post_problems(
    conn: Connection, channel_id: int, failures: Sequence[tuple[int, str]], now: str
) -> None:
    """Record posts that a page held but that did not parse; each is retried with back-off."""
    await conn.executemany(
        """
        INSERT INTO post_problems (channel_id, post_id, error, first_seen_at, last_seen_at, next_attempt_at)
        VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', ?, '+' || ? || ' seconds'))
        ON CONFLICT (channel_id, post_id) DO UPDATE SET
            error = excluded.error, last_seen_at = excluded.last_seen_at, attempts = post_problems.attempts + 1,
            next_attempt_at = strftime('%Y-%m-%dT%H:%M:%SZ', excluded.last_seen_at,
                '+' || min(? * (1 << min(post_problems.attempts, 8)), ?) || ' seconds')
        """,
        [(channel_id, post_id, error, now, now, now, PROBLEM_RETRY_BASE, PROBLEM_RETRY_BASE, PROBLEM_RETRY_MAX)
         for post_id, error in failures],
    )


async def get_due_post_problems(conn: Connection, channel_id: int, now: str, limit: int) -> list[int]:
    """Ids of posts that did not parse and are due for another try, newest first."""
    rows = await conn.execute_fetchall(
        "SELECT post_id FROM post_problems WHERE channel_id = ? AND next_attempt_at <= ? "
        "ORDER BY post_id DESC LIMIT ?",
        (channel_id, now, limit),
    )
    return [row["post_id"] for row in rows]


async def get_post_history(
    conn: Connection, username: str, post_id: int
) -> tuple[list[PostVersion], list[PostEvent]] | None:
    """Every version and event of one post, oldest first; None if it is not archived."""
    versions = await conn.execute_fetchall(
        """
        SELECT v.version, v.text, v.edited, v.seen_at
        FROM post_versions v JOIN channels c ON c.id = v.channel_id
        WHERE c.username = ? COLLATE NOCASE AND v.post_id = ? ORDER BY v.version
        """,
        (username, post_id),
    )
    if not versions:
        return None
    events = await conn.execute_fetchall(
        """
        SELECT e.kind, e.at, e.detail
        FROM post_events e JOIN channels c ON c.id = e.channel_id
        WHERE c.username = ? COLLATE NOCASE AND e.post_id = ? ORDER BY e.at, e.id
        """,
        (username, post_id),
    )
    return (
        [PostVersion(r["version"], r["text"], bool(r["edited"]), r["seen_at"]) for r in versions],
        [PostEvent(*r) for r in events],
    )


async def get_posts_since(conn: Connection, since: str) -> list[PostText]:
    """``(channel_id, username, post_id, version, date, text)`` of posts dated since ``since``."""
    rows = await conn.execute_fetchall(
        """
        SELECT p.channel_id, c.username, p.post_id, p.version, p.date, p.text
        FROM posts p JOIN channels c ON c.id = p.channel_id
        WHERE p.date >= ? AND p.text IS NOT NULL ORDER BY p.date
        """,
        (since,),
    )
    return [PostText(**dict(row)) for row in rows]
