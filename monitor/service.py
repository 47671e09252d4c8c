"""Lifecycle: open the archive and the network in order, run work, close in reverse."""

from __future__ import annotations

from contextlib import AsyncExitStack

from monitor.archive import ChannelOutcome, Progress, backfill_channel, run_round, sync_channel
from monitor.config import Config
from monitor.http import HttpClient
from monitor.sources.webpreview import WebPreviewSource
from storage.db import open_archive

# t.me localises "edited" and counters; legation parses the English page.
TELEGRAM_HEADERS = {"Accept-Language": "en-US,en;q=0.9"}


async def archive_channels(
    config: Config, usernames: list[str], *, backfill: bool, progress: Progress | None = None
) -> list[ChannelOutcome]:
    """One sync round (or a full backfill) over ``usernames``."""
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(open_archive(config.database))
        http = await stack.enter_async_context(HttpClient(config.network, headers=TELEGRAM_HEADERS))
        source = WebPreviewSource(http, config.telegram.web_url)
        step = backfill_channel if backfill else sync_channel
        return await run_round(conn, source, usernames, step, progress)
