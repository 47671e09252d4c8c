"""The sync round, the backfill and the re-check sweep: pages into the archive, resumably.

Invariant, kept across crashes: every post with an id in ``[tail_id, head_id]`` is
archived. Each page is saved in one transaction together with the state that it
advances (a backfill, five pages a transaction), so a ``kill -9`` at any moment loses at
most the pages not yet committed, which are fetched again.

* ``sync`` fetches the newest page. If it does not reach down to ``head_id``, the
  posts between are fetched by a *walk* (``walk_target``/``walk_cursor``) that a
  later sync resumes; only when the walk closes the gap does ``head_id`` move up.
  Then it re-reads the recent window, so that edits become versions and posts
  missing from a re-read page become deletion candidates, which are confirmed.
* ``backfill`` syncs, then walks below ``tail_id`` until a page has nothing older.
* ``recheck`` sweeps from the newest post down to a date, like a slow re-read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from monitor.capture.deletions import check_gaps, confirm_deletions
from monitor.config.settings import SyncConfig
from monitor.errors import ChannelReplaced, ChannelUnavailable, FetchError, NothingArchived, Stopped
from monitor.sources.page import ChannelPage, PageSource
from storage.channels import (
    count_posts_from,
    ensure_channel,
    get_channel_id,
    get_channel_state,
    get_first_post_since,
    get_highest_post_id,
    save_channel_info,
    save_channel_state,
    save_recheck_done,
    save_sync_error,
    save_sync_success,
)
from storage.db import Connection, transaction
from storage.deletions import clear_candidates, get_missing, save_candidates
from storage.errors import StorageError
from storage.media import has_due_media
from storage.models import ChannelState, NewestPage, Post, SaveResult, utc_in, utc_now
from storage.posts import get_due_post_problems, save_post_problems, save_posts

if TYPE_CHECKING:
    from monitor.alerts.engine import AlertHooks

log = structlog.get_logger(__name__)


class MediaCapture(Protocol):
    """What the round needs of the media store: which files are wanted, and their download."""

    def wants(self, role: str) -> bool: ...

    async def capture(self, conn: Connection, channel_id: int | None = None, pages: int = 1) -> object: ...


@dataclass(frozen=True, slots=True)
class RoundSettings:
    """What a round needs besides the source: the re-check window, alert hooks and the media
    store if any."""

    window: SyncConfig = SyncConfig()
    alerts: AlertHooks | None = None
    media: MediaCapture | None = None


# A page that lacks more archived posts of its range than it shows (and at least
# this many) is garbled or a different page, not a mass deletion.
SUSPICIOUS_MISSING = 5
DEFAULT_SETTINGS = RoundSettings()
PROBLEM_RETRIES_PER_ROUND = 5  # posts that did not parse, tried again per channel and round
# A backfill saves this many pages in each transaction (fetched first: the archive is never
# locked across a request); a crash loses at most them, never leaving a gap.
BACKFILL_PAGES_PER_TRANSACTION = 5
EMPTY_PAGE_READS = 3  # times an empty page below known posts is read before it is believed


Progress = Callable[[str, ChannelState, SaveResult], None]
Step = Callable[[Connection, PageSource, str, "Progress | None"], Awaitable[SaveResult]]


@dataclass(frozen=True, slots=True)
class ChannelOutcome:
    """How one channel fared in a round."""

    username: str
    saved: SaveResult
    error: str | None = None


class _Reread:
    """How much of the recent history this round has read, against the re-check window."""

    def __init__(self, window: SyncConfig) -> None:
        self.window = window
        self.count = 0
        self.lowest: int | None = None
        self.oldest: str | None = None

    def add(self, posts: Sequence[Post]) -> None:
        if posts:
            dates = [post.date for post in posts if post.date]
            self.add_counted(len(posts), min(post.post_id for post in posts), min(dates) if dates else None)

    def add_counted(self, count: int, lowest: int, oldest: str | None) -> None:
        """``count`` posts read, the lowest id and the oldest date among them (a page parsed, or
        one not parsed because it is the one parsed before: its posts as archived)."""
        self.count += count
        self.lowest = lowest if self.lowest is None else min(self.lowest, lowest)
        if oldest is not None and (self.oldest is None or oldest < self.oldest):
            self.oldest = oldest

    def satisfied(self) -> bool:
        old_enough = self.oldest is not None and self.oldest < utc_in(-self.window.recheck_age)
        return self.count >= self.window.recheck_posts or old_enough


async def sync_channel(
    conn: Connection,
    source: PageSource,
    username: str,
    progress: Progress | None = None,
    settings: RoundSettings = DEFAULT_SETTINGS,
) -> SaveResult:
    """One incremental pass: new posts, the re-check window, and deletion confirmations."""
    state = await get_channel_state(conn, await _ensure(conn, username))
    reread = _Reread(settings.window)
    total = SaveResult()
    if state.walk_cursor is not None:  # an interrupted walk: close that gap first
        state, saved = await _walk(conn, source, state, GAP, settings, progress, reread)
        total += saved
    known = await _unparsed_if_same(conn, state, settings)
    page = _same_channel(state, await source.fetch_page(
        username, known_signature=known.signature if known is not None else None))
    if page.unchanged and known is not None:  # nothing new, edited or gone on it: only counters differ
        count, oldest = await count_posts_from(conn, state.channel_id, known.lowest_id)
        reread.add_counted(count, known.lowest_id, oldest)
    else:
        covers = (page.posts[0].post_id, None) if page.posts else None
        newest = await _head_below_newest(conn, state, page.posts)
        after = dataclasses.replace(_after_newest(newest, page.posts), newest_page=_newest_page(page))
        state, saved = await _save_page(conn, state, page, page.posts, after, settings, covers)
        reread.add(page.posts)
        total += saved
    if state.walk_cursor is not None:
        state, saved = await _walk(conn, source, state, GAP, settings, progress, reread)
        total += saved
    state, saved = await _walk(conn, source, state, _reread_walk(reread), settings, None, reread)
    total += saved
    total += await _retry_problems(conn, source, state, settings)
    total += SaveResult(deleted=await confirm_deletions(conn, source, state, settings.window.max_confirmations,
                                                        settings.alerts))
    _report(progress, state, total)
    return total


async def backfill_channel(
    conn: Connection,
    source: PageSource,
    username: str,
    progress: Progress | None = None,
    settings: RoundSettings = DEFAULT_SETTINGS,
) -> SaveResult:
    """Sync, then walk back to the channel's first post; resumable at any point."""
    total = await sync_channel(conn, source, username, progress, settings)
    state = await get_channel_state(conn, await _ensure(conn, username))
    if state.backfill_done_at is None and (state.tail_id or 0) <= 1:  # empty channel, or at post 1
        state = await _commit_state(conn, dataclasses.replace(state, backfill_done_at=utc_now()))
    _, saved = await _walk(conn, source, state, BACKFILL, settings, progress)
    return total + saved


async def recheck_channel(
    conn: Connection,
    source: PageSource,
    username: str,
    progress: Progress | None = None,
    since: str | None = None,
    settings: RoundSettings = DEFAULT_SETTINGS,
) -> SaveResult:
    """Re-read archived posts from the newest down to ``since`` (or the oldest); resumable."""
    state = await get_channel_state(conn, await _ensure(conn, username))
    if state.recheck_cursor is None:
        if state.head_id is None:
            raise NothingArchived(username)
        until = await get_first_post_since(conn, state.channel_id, since) if since else state.tail_id
        if until is None:
            return SaveResult()
        state = await _commit_state(conn, dataclasses.replace(
            state, recheck_cursor=state.head_id + 1, recheck_until=until))
    state, total = await _walk(conn, source, state, RECHECK, settings, progress)
    async with transaction(conn):
        await save_recheck_done(conn, state.channel_id, utc_now())
    deleted = await confirm_deletions(conn, source, state, None, settings.alerts)
    await check_gaps(conn, source, state)  # what the pages did not show: gone, or still a gap
    return total + SaveResult(deleted=deleted)


async def save_fetched_posts(conn: Connection, username: str, posts: Sequence[Post],
                             settings: RoundSettings = DEFAULT_SETTINGS) -> SaveResult:
    """Posts fetched one by one (a live edit of an old post), saved as a page's posts are: a
    version when changed, alerts, media; the resume state is not theirs to move."""
    state = await get_channel_state(conn, await _ensure(conn, username))
    _, saved = await _save_page(conn, state, None, posts, state, settings)
    return saved


async def run_round(
    conn: Connection,
    source: PageSource,
    usernames: Sequence[str],
    step: Step,
    progress: Progress | None = None,
) -> list[ChannelOutcome]:
    """Run ``step`` (sync, backfill, recheck) for each channel; one failure spares the rest."""
    outcomes = []
    for username in usernames:
        channel_id = await _ensure(conn, username)
        try:
            saved = await step(conn, source, username, progress)
        except NothingArchived as exc:  # nothing was read: the channel's health stays what it was
            log.info("channel_not_archived", channel=username)
            outcomes.append(ChannelOutcome(username, SaveResult(), str(exc)))
            continue
        except (ChannelUnavailable, FetchError) as exc:
            message = str(exc)
            log.error("channel_failed", channel=username, error=message)
            async with transaction(conn):
                await save_sync_error(conn, channel_id, message, utc_now())
            outcomes.append(ChannelOutcome(username, SaveResult(), message))
            continue
        async with transaction(conn):
            await save_sync_success(conn, channel_id, utc_now())
        log.info("channel_synced", channel=username, **dataclasses.asdict(saved))
        outcomes.append(ChannelOutcome(username, saved))
    return outcomes


@dataclass(frozen=True, slots=True)
class Walk:
    """A walk down a channel's history, page by page, each page saved with the state it advances.

    ``cursor`` says where the next page ends (it holds the posts below it), ``None`` when
    the walk is over; ``advance`` is the state once a page of ``older`` posts is saved (a
    page with nothing older ends every walk). This is the only loop that moves through
    the history: sync's gap walk, the backfill, the re-check sweep and the re-read of the
    recent window are its parameters.
    """

    name: str
    cursor: Callable[[ChannelState], int | None]
    advance: Callable[[ChannelState, Sequence[Post]], ChannelState]
    logged: bool = False  # one progress event per page: long walks (a first backfill, a sweep)
    pages_per_transaction: int = 1  # pages fetched, then saved together with the state they reach


def _close_gap(state: ChannelState, older: Sequence[Post]) -> ChannelState:
    if not older or older[0].post_id <= (state.head_id or 0):
        return dataclasses.replace(state, head_id=state.walk_target, walk_target=None, walk_cursor=None)
    return dataclasses.replace(state, walk_cursor=older[0].post_id)


def _extend_tail(state: ChannelState, older: Sequence[Post]) -> ChannelState:
    if not older:
        return dataclasses.replace(state, backfill_done_at=utc_now())
    first = older[0].post_id  # post 1 is the channel's first: nothing older to ask for
    return dataclasses.replace(state, tail_id=first, backfill_done_at=utc_now() if first <= 1 else None)


def _sweep(state: ChannelState, older: Sequence[Post]) -> ChannelState:
    if not older or older[0].post_id <= (state.recheck_until or 0):
        return dataclasses.replace(state, recheck_cursor=None, recheck_until=None)
    return dataclasses.replace(state, recheck_cursor=older[0].post_id)


GAP = Walk("gap", lambda state: state.walk_cursor, _close_gap)
BACKFILL = Walk("backfill", lambda s: s.tail_id if s.backfill_done_at is None and (s.tail_id or 0) > 1 else None,
                _extend_tail, logged=True, pages_per_transaction=BACKFILL_PAGES_PER_TRANSACTION)
RECHECK = Walk("recheck", lambda state: state.recheck_cursor, _sweep, logged=True)


def _reread_walk(reread: _Reread) -> Walk:
    """Below what this round has read, until the re-check window is covered; no state of its own."""
    def cursor(state: ChannelState) -> int | None:
        lowest = reread.lowest
        return lowest if not reread.satisfied() and lowest is not None and lowest > (state.tail_id or 1) else None
    return Walk("reread", cursor, lambda state, older: state)


async def _walk(
    conn: Connection, source: PageSource, state: ChannelState, walk: Walk, settings: RoundSettings,
    progress: Progress | None, reread: _Reread | None = None,
) -> tuple[ChannelState, SaveResult]:
    """Fetch and save pages below ``walk.cursor`` until the walk is over; up to
    ``walk.pages_per_transaction`` pages are fetched, then saved in one transaction with the
    state the last of them reaches (a crash loses at most those pages, never leaves a gap)."""
    total = SaveResult()
    reached, over = state, False
    while not over and walk.cursor(reached) is not None:
        batch: list[_PageWrite] = []
        try:
            while len(batch) < walk.pages_per_transaction and (cursor := walk.cursor(reached)) is not None:
                page, older = await _page_below(source, state, cursor)
                reached = walk.advance(reached, older)
                batch.append(_PageWrite(page, older, (older[0].post_id, cursor - 1) if older else None))
                if reread is not None:
                    reread.add(older)
                if not older:
                    over = True
                    break
        except (FetchError, ChannelUnavailable):
            if batch:  # what was read before the failure is kept: the next round goes on from there
                await _save_pages(conn, state, batch, reached, settings)
            raise
        state, saved = await _save_pages(conn, state, batch, reached, settings)
        total += saved
        _report(progress, state, total)
        if walk.logged:
            lowest = next((w.posts[0].post_id for w in reversed(batch) if w.posts), None)
            log.info(f"{walk.name}_progress", channel=state.username, read_down_to=lowest,
                     until=state.recheck_until if walk is RECHECK else None, new=total.new, changed=total.changed)
    return state, total


async def _page_below(source: PageSource, state: ChannelState, cursor: int) -> tuple[ChannelPage, list[Post]]:
    """The page of posts below ``cursor``, and those posts. t.me at times answers a ``?before=``
    with an empty page where posts exist: an empty answer above post 1 is asked again before it
    is believed (it ends a backfill for good, and closes a sync's gap)."""
    for attempt in range(1, EMPTY_PAGE_READS + 1):
        page = _same_channel(state, await source.fetch_page(state.username, before=cursor))
        older = [p for p in page.posts if p.post_id < cursor]
        if older or cursor <= 1:
            break
        log.info("empty_page", channel=state.username, before=cursor, attempt=attempt)
    return page, older


def _same_channel(state: ChannelState, page: ChannelPage) -> ChannelPage:
    """``page``, if it is of the channel archived under this username (by its numeric id)."""
    served = page.channel.telegram_id
    if state.telegram_id is not None and served is not None and served != state.telegram_id:
        raise ChannelReplaced(state.username, state.telegram_id, served)
    return page


async def _head_below_newest(conn: Connection, state: ChannelState, posts: Sequence[Post]) -> ChannelState:
    """The newest page holds the channel's newest post: a ``head_id`` above it was a post now gone
    (an out-of-range id on a page once, later deleted). The head goes back to the highest post
    archived at or below the page, so that a gap between it and the page is walked, not skipped."""
    if not posts or state.head_id is None or state.walk_cursor is not None or posts[-1].post_id >= state.head_id:
        return state
    highest = await get_highest_post_id(conn, state.channel_id, posts[-1].post_id)
    if highest is None:
        return state
    log.warning("head_above_newest_page", channel=state.username, head_id=state.head_id, newest=posts[-1].post_id,
                back_to=highest)
    return dataclasses.replace(state, head_id=highest)


async def _retry_problems(
    conn: Connection, source: PageSource, state: ChannelState, settings: RoundSettings,
) -> SaveResult:
    """Read again the pages of posts that did not parse (due ones, a few per round)."""
    total = SaveResult()
    for post_id in await get_due_post_problems(conn, state.channel_id, utc_now(), PROBLEM_RETRIES_PER_ROUND):
        page = _same_channel(state, await source.fetch_page(state.username, before=post_id + 1))
        posts = [p for p in page.posts if p.post_id == post_id]
        failures = tuple(f for f in page.failures if f[0] == post_id)
        if not posts and not failures:
            failures = ((post_id, "not on its page any more (deleted, or an album member)"),)
        page = dataclasses.replace(page, failures=failures)
        _, saved = await _save_page(conn, state, page, posts, state, settings)
        total += saved
    return total


async def _unparsed_if_same(conn: Connection, state: ChannelState, settings: RoundSettings) -> NewestPage | None:
    """The newest page as last parsed, if a page with its signature need not be parsed again:
    no walk pending, read within ``reparse_after`` (views and counters come up to date then),
    and no files of the channel waiting (a parsed page brings their links fresh)."""
    known = state.newest_page
    if known is None or state.walk_cursor is not None or known.read_at <= utc_in(-settings.window.reparse_after):
        return None
    if settings.media is not None and await has_due_media(conn, state.channel_id, utc_now()):
        return None
    return known


def _newest_page(page: ChannelPage) -> NewestPage | None:
    """What the next sync compares the newest page with; nothing for a page with posts that did not parse."""
    if page.signature is None or not page.posts or page.parse_errors or page.fetched_at is None:
        return None
    return NewestPage(page.signature, page.posts[0].post_id, page.fetched_at)


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


@dataclass(frozen=True, slots=True)
class _PageWrite:
    """A fetched page, the posts of it to save, and the id range it shows in full (``covers``,
    ``None`` as the top: no limit): archived posts in that range that it lacks become
    deletion candidates."""

    page: ChannelPage | None
    posts: Sequence[Post]
    covers: tuple[int, int | None] | None = None


async def _save_page(
    conn: Connection,
    state: ChannelState,
    page: ChannelPage | None,
    posts: Sequence[Post],
    next_state: ChannelState,
    settings: RoundSettings,
    covers: tuple[int, int | None] | None = None,
) -> tuple[ChannelState, SaveResult]:
    """One page with the state it advances, in one transaction."""
    return await _save_pages(conn, state, [_PageWrite(page, posts, covers)], next_state, settings)


async def _save_pages(
    conn: Connection, state: ChannelState, writes: Sequence[_PageWrite], next_state: ChannelState,
    settings: RoundSettings,
) -> tuple[ChannelState, SaveResult]:
    """Posts, channel info, deletion candidates of ``writes``, and the state they reach, in one
    transaction; then the media files they name."""
    now = utc_now()
    saved = SaveResult()
    async with transaction(conn):
        for write in writes:
            page = write.page
            posts = [_wanted_files(post, settings.media) for post in write.posts]
            read_at = page.fetched_at if page is not None else None
            result = await save_posts(conn, state.channel_id, posts, now, read_at) if posts else SaveResult()
            if settings.alerts is not None and (result.new or result.changed):
                await settings.alerts.on_saved_posts(conn, state.channel_id, state.username,
                                                     [p.post_id for p in posts], now)
            saved += result
            if page is not None:
                await save_channel_info(conn, state.channel_id, page.channel, now)
                if page.failures:
                    await save_post_problems(conn, state.channel_id, page.failures, now)
                if write.covers is not None and posts:
                    await _note_missing(conn, state, page, posts, write.covers, now)
        if next_state != state:
            await save_channel_state(conn, next_state)
    if settings.media is not None:
        await _capture_media(conn, settings.media, state, len(writes))
    return next_state, saved


def _wanted_files(post: Post, media: MediaCapture | None) -> Post:
    if not post.media_sources:
        return post
    wanted = tuple(s for s in post.media_sources
                   if media is not None and (s.origin == "account" or media.wants(s.role)))
    return post if len(wanted) == len(post.media_sources) else dataclasses.replace(post, media_sources=wanted)


async def _capture_media(conn: Connection, media: MediaCapture, state: ChannelState, pages: int) -> None:
    """The page's files, right after the page is saved (their links expire); a failure here is
    the files', retried later, never the round's."""
    try:
        await media.capture(conn, state.channel_id, pages)
    except (Stopped, StorageError):
        raise
    except Exception as exc:  # noqa: BLE001 - the posts are saved; the files are retried next round
        log.exception("media_capture_failed", channel=state.username, error=str(exc))


async def _note_missing(
    conn: Connection, state: ChannelState, page: ChannelPage, posts: Sequence[Post],
    covers: tuple[int, int | None], now: str,
) -> None:
    present = [p.post_id for p in posts]
    await clear_candidates(conn, state.channel_id, present)
    if page.parse_errors:
        log.warning("page_not_used_for_deletions", channel=state.username, reason="posts failed to parse",
                    low=covers[0], high=covers[1])
        return
    low, high = covers[0], covers[1] if covers[1] is not None else 2**62
    missing = await get_missing(conn, state.channel_id, low, high, present)
    if len(missing) >= SUSPICIOUS_MISSING and len(missing) > len(present):
        log.warning("page_not_used_for_deletions", channel=state.username, reason="too many posts missing",
                    low=low, high=covers[1], missing=len(missing))
        return
    if missing:
        log.info("deletion_candidates", channel=state.username, post_ids=missing)
        await save_candidates(conn, state.channel_id, missing, now)


async def _commit_state(conn: Connection, state: ChannelState) -> ChannelState:
    async with transaction(conn):
        await save_channel_state(conn, state)
    return state


async def _ensure(conn: Connection, username: str) -> int:
    """The channel's id; a write transaction only the first time a channel is seen."""
    channel_id = await get_channel_id(conn, username)
    if channel_id is not None:
        return channel_id
    async with transaction(conn):
        return await ensure_channel(conn, username, utc_now())


def _report(progress: Progress | None, state: ChannelState, total: SaveResult) -> None:
    if progress is not None:
        progress(state.username, state, total)
