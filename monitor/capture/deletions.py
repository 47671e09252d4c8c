"""Deletions: posts missing from re-read pages are confirmed on their single-post page."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Protocol

import structlog

from monitor.errors import FetchError
from monitor.sources.page import PostCheck
from storage.db import Connection, transaction
from storage.deletions import clear_candidates, get_candidates, save_candidate_failure, save_deletion
from storage.gaps import get_gaps, save_absence
from storage.models import ChannelState, utc_now

if TYPE_CHECKING:
    from monitor.alerts.engine import AlertHooks

log = structlog.get_logger(__name__)


class PostChecker(Protocol):
    """What confirmation needs of a source."""

    async def check_post(self, username: str, post_id: int) -> PostCheck: ...


async def confirm_deletions(
    conn: Connection, source: PostChecker, state: ChannelState, limit: int | None,
    alerts: AlertHooks | None = None,
) -> int:
    """Check up to ``limit`` pending candidates; return how many were confirmed deleted.

    "Post not found" marks the post deleted; a post that still shows is cleared; an
    inconclusive answer or a network fault leaves the candidate pending for the next
    round (after a fault, the rest wait too: the network is likely down).
    """
    confirmed = 0
    for post_id in (await get_candidates(conn, state.channel_id))[:limit]:
        try:
            check = await source.check_post(state.username, post_id)
        except FetchError as exc:
            await _failed(conn, state, post_id, str(exc))
            break
        async with transaction(conn):
            if check.deleted:
                now = utc_now()
                await save_deletion(conn, state.channel_id, post_id, now, check.note)
                if alerts is not None:
                    await alerts.on_deletion(conn, state.channel_id, state.username, post_id, now)
                confirmed += 1
            elif check is PostCheck.EXISTS:
                await clear_candidates(conn, state.channel_id, [post_id])
            else:
                await save_candidate_failure(conn, state.channel_id, post_id, "inconclusive single-post page",
                                             utc_now())
        log.info("deletion_checked", channel=state.username, post_id=post_id, result=check.value)
    return confirmed


async def _failed(conn: Connection, state: ChannelState, post_id: int, error: str) -> None:
    log.warning("deletion_check_failed", channel=state.username, post_id=post_id, error=error)
    async with transaction(conn):
        await save_candidate_failure(conn, state.channel_id, post_id, error, utc_now())


MAX_GAP_CHECKS = 100  # gap ids asked about after one recheck of a channel (newest first)


async def check_gaps(conn: Connection, source: PostChecker, state: ChannelState,
                     limit: int = MAX_GAP_CHECKS) -> int:
    """After a recheck has read the pages again: ask the single-post page of each id still never
    seen (up to ``limit``, newest first); one that is gone is recorded as absent (deleted before
    legation saw it), no longer a gap. Returns how many were found gone. A network fault ends
    the checks (the next recheck goes on)."""
    found = await conn.run(get_gaps, state.username)
    ids = itertools.islice((post_id for first, last in reversed(found.missing if found else [])
                            for post_id in range(last, first - 1, -1)), limit)  # a hole may span millions
    gone = 0
    for post_id in ids:
        try:
            check = await source.check_post(state.username, post_id)
        except FetchError as exc:
            log.warning("gap_check_failed", channel=state.username, post_id=post_id, error=str(exc))
            break
        if check.deleted:
            async with transaction(conn):
                await conn.run(save_absence, state.channel_id, post_id, utc_now(), check.note)
            gone += 1
        log.info("gap_checked", channel=state.username, post_id=post_id, result=check.value)
    return gone
