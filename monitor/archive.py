"""The sync round and the backfill: pages from a source into the archive, resumably.

Invariant, kept across crashes: every post with an id in ``[tail_id, head_id]`` is
archived. Each page is saved in one transaction together with the state that it
advances, so a ``kill -9`` at any moment loses at most the page in flight.

* ``sync`` fetches the newest page. If it does not reach down to ``head_id``, the
  posts between are fetched by a *walk* (``walk_target``/``walk_cursor``) that a
  later sync resumes; only when the walk closes the gap does ``head_id`` move up.
* ``backfill`` syncs, then walks below ``tail_id`` until a page has nothing older.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiosqlite
import structlog

from monitor.errors import ChannelUnavailable, FetchError
from monitor.sources.webpreview import ChannelPage
from storage.channels import (
    ensure_channel,
    get_channel_state,
    save_channel_info,
    save_channel_state,
    save_sync_error,
    save_sync_success,
)
from storage.db import transaction
from storage.models import ChannelState, Post, SaveResult, utc_now
from storage.posts import save_posts

log = structlog.get_logger(__name__)


class PageSource(Protocol):
    """What the round needs of a source: the newest page, or the page before an id."""

    async def fetch_page(self, username: str, before: int | None = None) -> ChannelPage: ...


Progress = Callable[[str, ChannelState, SaveResult], None]


@dataclass(frozen=True, slots=True)
class ChannelOutcome:
    """How one channel fared in a round."""

    username: str
    saved: SaveResult
    error: str | None = None


async def sync_channel(
    conn: aiosqlite.Connection, source: PageSource, username: str, progress: Progress | None = None
) -> SaveResult:
    """One incremental pass: everything newer than ``head_id`` (one request if nothing is)."""
    channel_id = await _ensure(conn, username)
    state = await get_channel_state(conn, channel_id)
    total = SaveResult()
    if state.walk_cursor is not None:  # an interrupted walk: close that gap first
        state, saved = await _walk_to_head(conn, source, state, progress)
        total += saved
    page = await source.fetch_page(username)
    state, saved = await _save_page(conn, state, page, page.posts, _after_newest(state, page.posts))
    total += saved
    if state.walk_cursor is not None:
        state, saved = await _walk_to_head(conn, source, state, progress)
        total += saved
    _report(progress, state, total)
    return total


async def backfill_channel(
    conn: aiosqlite.Connection, source: PageSource, username: str, progress: Progress | None = None
) -> SaveResult:
    """Sync, then walk back to the channel's first post; resumable at any point."""
    total = await sync_channel(conn, source, username, progress)
    state = await get_channel_state(conn, await _ensure(conn, username))
    while state.backfill_done_at is None:
        if state.tail_id is None or state.tail_id <= 1:
            older: Sequence[Post] = ()
            page = None
        else:
            page = await source.fetch_page(username, before=state.tail_id)
            older = [p for p in page.posts if p.post_id < state.tail_id]
        if older:
            next_state = dataclasses.replace(state, tail_id=min(p.post_id for p in older))
        else:
            next_state = dataclasses.replace(state, backfill_done_at=utc_now())
        state, saved = await _save_page(conn, state, page, older, next_state)
        total += saved
        _report(progress, state, total)
    return total


async def run_round(
    conn: aiosqlite.Connection,
    source: PageSource,
    usernames: Sequence[str],
    step: Callable[[aiosqlite.Connection, PageSource, str, Progress | None], Awaitable[SaveResult]],
    progress: Progress | None = None,
) -> list[ChannelOutcome]:
    """Run ``step`` (sync or backfill) for each channel; one channel's failure spares the rest."""
    outcomes = []
    for username in usernames:
        channel_id = await _ensure(conn, username)
        try:
            saved = await step(conn, source, username, progress)
        except (ChannelUnavailable, FetchError) as exc:
            message = str(exc)
            log.error("channel_failed", channel=username, error=message)
            async with transaction(conn):
                await save_sync_error(conn, channel_id, message, utc_now())
            outcomes.append(ChannelOutcome(username, SaveResult(), message))
            continue
        async with transaction(conn):
            await save_sync_success(conn, channel_id, utc_now())
        log.info("channel_synced", channel=username, new=saved.new, changed=saved.changed,
                 unchanged=saved.unchanged)
        outcomes.append(ChannelOutcome(username, saved))
    return outcomes


async def _walk_to_head(
    conn: aiosqlite.Connection, source: PageSource, state: ChannelState, progress: Progress | None
) -> tuple[ChannelState, SaveResult]:
    """Fetch pages below ``walk_cursor`` until they reach ``head_id``; then move the head up."""
    total = SaveResult()
    while state.walk_cursor is not None:
        cursor, head = state.walk_cursor, state.head_id or 0
        page = await source.fetch_page(state.username, before=cursor)
        older = [p for p in page.posts if p.post_id < cursor]
        lowest = min((p.post_id for p in older), default=None)
        if lowest is None or lowest <= head:
            next_state = dataclasses.replace(state, head_id=state.walk_target, walk_target=None,
                                             walk_cursor=None)
        else:
            next_state = dataclasses.replace(state, walk_cursor=lowest)
        state, saved = await _save_page(conn, state, page, older, next_state)
        total += saved
        _report(progress, state, total)
    return state, total


def _after_newest(state: ChannelState, posts: Sequence[Post]) -> ChannelState:
    """The state once the newest page is saved: first sight, nothing new, closed gap, or walk."""
    if not posts or state.walk_cursor is not None:
        return state
    lowest, highest = posts[0].post_id, posts[-1].post_id
    if state.head_id is None:
        return dataclasses.replace(state, head_id=highest, tail_id=lowest)
    if highest <= state.head_id:
        return state
    if lowest <= state.head_id:
        return dataclasses.replace(state, head_id=highest)
    return dataclasses.replace(state, walk_target=highest, walk_cursor=lowest)


async def _save_page(
    conn: aiosqlite.Connection,
    state: ChannelState,
    page: ChannelPage | None,
    posts: Sequence[Post],
    next_state: ChannelState,
) -> tuple[ChannelState, SaveResult]:
    """Posts, channel info and the advanced state, in one transaction."""
    now = utc_now()
    async with transaction(conn):
        saved = await save_posts(conn, state.channel_id, posts, now) if posts else SaveResult()
        if page is not None:
            await save_channel_info(conn, state.channel_id, page.channel, now)
        if next_state != state:
            await save_channel_state(conn, next_state)
    return next_state, saved


async def _ensure(conn: aiosqlite.Connection, username: str) -> int:
    async with transaction(conn):
        return await ensure_channel(conn, username, utc_now())


def _report(progress: Progress | None, state: ChannelState, total: SaveResult) -> None:
    if progress is not None:
        progress(state.username, state, total)
