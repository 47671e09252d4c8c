"""Lifecycle: open the archive and the network in order, run work, close in reverse."""

from __future__ import annotations

import functools
from contextlib import AsyncExitStack
from typing import Literal

from monitor.archive import (
    ChannelOutcome,
    Progress,
    Step,
    backfill_channel,
    recheck_channel,
    run_round,
    sync_channel,
)
from monitor.config import Config
from monitor.http import HttpClient
from monitor.sources.webpreview import WebPreviewSource
from storage.db import open_archive

# t.me localises "edited" and counters; legation parses the English page.
TELEGRAM_HEADERS = {"Accept-Language": "en-US,en;q=0.9"}

Mode = Literal["sync", "backfill", "recheck"]


def make_step(config: Config, mode: Mode, since: str | None = None) -> Step:
    """The per-channel work of ``mode``, with its settings bound."""
    if mode == "recheck":
        return functools.partial(recheck_channel, since=since)
    step = backfill_channel if mode == "backfill" else sync_channel
    return functools.partial(step, window=config.sync)


async def archive_channels(
    config: Config, usernames: list[str], *, mode: Mode = "sync", since: str | None = None,
    progress: Progress | None = None,
) -> list[ChannelOutcome]:
    """One sync round, a full backfill, or a re-check sweep over ``usernames``."""
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(open_archive(config.database))
        http = await stack.enter_async_context(HttpClient(config.network, headers=TELEGRAM_HEADERS))
        source = WebPreviewSource(http, config.telegram.web_url)
        return await run_round(conn, source, usernames, make_step(config, mode, since), progress)
