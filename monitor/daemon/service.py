"""Lifecycle: open the archive and the network in order, run work, close in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from monitor.capture.rounds import (
    ChannelOutcome,
    Progress,
    RoundSettings,
    Step,
    backfill_channel,
    recheck_channel,
    run_round,
    sync_channel,
)
from monitor.config.settings import INCOMING, Config
from monitor.daemon.lock import WriterLock
from monitor.errors import AccountOffline
from monitor.net.client import HttpClient, proxy_policy
from monitor.net.guard import AddressGuard
from monitor.sources.routed import RoutedSource
from monitor.sources.webpreview import WebPreviewSource
from storage.db import Connection, open_archive, transaction
from storage.errors import ArchiveUnusable, StorageError
from storage.models import utc_now
from storage.pages import follow_domains

# What only some configurations need is imported where it is used, so that a plain sync
# starts fast: Telethon (an account), the page extractors (followed sites), Playwright
# (the browser), Apprise (alert rules), APScheduler (the daemon).
if TYPE_CHECKING:
    from monitor.alerts.deliver import DeliveryOutcome
    from monitor.capture.media import MediaStore
    from monitor.pages.fetch import PagesOutcome
    from monitor.sources.tg_client import TelegramClientLike

log = structlog.get_logger(__name__)

# t.me localises "edited" and counters; legation parses the English page.
ARCHIVE_CHECK_INTERVAL = 5.0  # seconds between looks at the archive file under a running daemon
TELEGRAM_HEADERS = {"Accept-Language": "en-US,en;q=0.9"}
TELEGRAM_PAGE_CAP = 64 * 1024 * 1024  # 20 posts of Telegram's longest, with their markup, fit many times

Mode = Literal["sync", "backfill", "recheck"]


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What a round did for each channel, for the linked pages, and for alerts."""

    channels: list[ChannelOutcome]
    pages: PagesOutcome | None
    alerts: DeliveryOutcome | None = None


def round_settings(config: Config, media: MediaStore | None = None) -> RoundSettings:
    """The re-check window, alert hooks when rules are configured, and the media store."""
    if not config.alerts.rules:
        return RoundSettings(config.sync, None, media)
    from monitor.alerts.engine import AlertHooks

    return RoundSettings(config.sync, AlertHooks(config.alerts), media)


async def open_media(stack: AsyncExitStack, config: Config, stop: asyncio.Event | None = None) -> MediaStore | None:
    """The media store, when [media] download keeps anything: its own client (the size cap is
    [media] max_size; the address guard on every hop), and no partial file left from a crash."""
    account_media = any(channel.download_media for channel in config.channels)
    if not config.media.download and not account_media:
        return None
    from monitor.capture.media import MediaStore, remove_partial_files

    network = dataclasses.replace(config.network, max_response_size=config.media.max_size)
    client = await stack.enter_async_context(HttpClient(network, guard=address_guard(config), stop=stop))
    await asyncio.to_thread(remove_partial_files, config.media_dir)
    incoming = config.telegram.media_dir / INCOMING if account_media else None
    return MediaStore(client, config.media, config.media_dir, incoming)


def make_step(config: Config, mode: Mode, since: str | None = None,
              settings: RoundSettings | None = None) -> Step:
    """The per-channel work of ``mode``, with its settings bound."""
    settings = settings or round_settings(config)
    if mode == "recheck":
        return functools.partial(recheck_channel, since=since, settings=settings)
    step = backfill_channel if mode == "backfill" else sync_channel
    return functools.partial(step, settings=settings)


def pages_client(config: Config, stop: asyncio.Event | None = None) -> HttpClient:
    """The client for release pages: its own per-host delay, and the address guard on every hop."""
    network = dataclasses.replace(config.network, request_delay=config.pages.request_delay)
    return HttpClient(network, guard=address_guard(config, config.pages.follows), stop=stop)


def writer_lock(config: Config) -> contextlib.AbstractContextManager[Any]:
    """One writer a SQLite archive (a lock file beside it); a PostgreSQL archive takes several
    workers, which share the work by leases instead."""
    if isinstance(config.database, str):
        return contextlib.nullcontext()
    return WriterLock(config.database)


def tsa_client(config: Config, stop: asyncio.Event | None = None) -> HttpClient:
    """The client for time-stamping authorities: the hosts the config names, through the address guard."""
    return HttpClient(config.network, guard=address_guard(config), stop=stop)


def address_guard(config: Config, follows: Callable[[str], bool] | None = None) -> AddressGuard:
    """The guard of every client that fetches what a post or page names (not t.me itself)."""
    return AddressGuard(allow_private=config.network.allow_private_addresses,
                        proxied=proxy_policy(config.network)[0] is not None, follows=follows)


async def open_sources(stack: AsyncExitStack, config: Config, stop: asyncio.Event | None = None,
                       account_client: TelegramClientLike | None = None) -> RoutedSource:
    """The web preview, and the account when one is logged in (or a client is given, as in tests)."""
    # t.me pages of long posts run to megabytes: their cap is never below TELEGRAM_PAGE_CAP.
    network = dataclasses.replace(config.network,
                                  max_response_size=max(config.network.max_response_size, TELEGRAM_PAGE_CAP))
    telegram = await stack.enter_async_context(HttpClient(network, stop=stop, headers=TELEGRAM_HEADERS))
    web = WebPreviewSource(telegram, config.telegram.web_url)
    client = account_client if account_client is not None else await _logged_in_client(stack, config)
    if client is None:
        return RoutedSource(web, None, {c.name: c.source for c in config.channels})
    from monitor.sources.tg_client import AccountSource, MediaPolicy

    media = MediaPolicy(config.telegram.media_dir, config.telegram.max_media_size,
                        frozenset(c.name.lower() for c in config.channels if c.download_media))
    account = AccountSource(client, max_flood_sleep=config.telegram.max_flood_sleep, stop=stop, media=media,
                            request_timeout=config.telegram.request_timeout,
                            join=frozenset(c.name.lower() for c in config.channels if c.join))
    return RoutedSource(web, account, {c.name: c.source for c in config.channels})


async def _logged_in_client(stack: AsyncExitStack, config: Config) -> TelegramClientLike | None:
    session = Path(f"{config.telegram.session}.session")
    if not config.telegram.account_configured or not session.exists():
        return None
    assert config.telegram.api_id is not None and config.telegram.api_hash is not None
    from monitor.sources.tg_client import connect, make_client

    client = make_client(config.telegram, config.network.proxy)
    stack.push_async_callback(client.disconnect)
    try:
        await connect(client, config.telegram)
    except AccountOffline as exc:  # offline now: each round tries again, with a back-off
        log.warning("account_unreachable", error=exc.reason,
                    then="connecting again at the next request; auto channels use the web preview meanwhile")
        return client
    from telethon import errors

    try:
        authorized = await client.is_user_authorized()
    except errors.ApiIdInvalidError:  # a config error; the web preview channels still run
        log.error("account_config_invalid", key="telegram.api_id", reason="Telegram does not accept this "
                  "api_id and api_hash (check them at my.telegram.org)")
        return None
    if not authorized:
        log.warning("account_not_logged_in", session=str(session))
        return None
    return client


async def archive_channels(
    config: Config, usernames: list[str], *, mode: Mode = "sync", since: str | None = None,
    progress: Progress | None = None, account_client: TelegramClientLike | None = None,
) -> RoundReport:
    """One sync round (or a backfill, or a re-check sweep) over ``usernames``, then the page queue."""
    async with AsyncExitStack() as stack:
        stack.enter_context(writer_lock(config))
        conn = await stack.enter_async_context(open_archive(config.database))
        queued = await follow_configured_domains(conn, config)
        source = await open_sources(stack, config, account_client=account_client)
        settings = round_settings(config, await open_media(stack, config))
        outcomes = await run_round(conn, source, usernames, make_step(config, mode, since, settings), progress)
        pages = None
        if config.pages.follow:
            from monitor.pages.browser import BrowserFetcher
            from monitor.pages.fetch import run_pages

            web = await stack.enter_async_context(pages_client(config))
            browser = await stack.enter_async_context(BrowserFetcher(web, config.pages)) \
                if config.pages.browser else None
            try:
                pages = await run_pages(conn, web, config.pages, settings.alerts, browser)
                pages.queued = queued
            except StorageError:
                raise
            except Exception as exc:  # alerts are delivered whatever became of the pages
                log.exception("pages_round_failed", error=str(exc))
        delivered = None
        if settings.alerts is not None:
            from monitor.alerts.deliver import AppriseNotifier, deliver_alerts

            delivered = await deliver_alerts(conn, config.alerts, AppriseNotifier(), config.telegram.web_url)
        return RoundReport(outcomes, pages, delivered)


async def follow_configured_domains(conn: Connection, config: Config) -> int:
    """Before a process saves posts: the links they hold on the domains of [pages] follow (none
    when it is empty) join the queue as they are saved; the archived links of a domain followed
    anew join it now. Returns how many pages did."""
    async with transaction(conn):
        queued = await follow_domains(conn, config.pages.follow, utc_now())
    if queued:
        log.info("pages_queued", count=queued)
    return queued


async def run_daemon(config: Config, stop: asyncio.Event, account_client: TelegramClientLike | None = None) -> None:
    """``legation run``: the jobs of every round on a schedule, until ``stop`` is set."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor.alerts.deliver import AppriseNotifier
    from monitor.daemon.jobs import Jobs
    from monitor.evidence.tsa import Stamper
    from monitor.pages.browser import BrowserFetcher

    async with AsyncExitStack() as stack:
        stack.enter_context(writer_lock(config))
        conn = await stack.enter_async_context(open_archive(config.database))
        await follow_configured_domains(conn, config)
        source = await open_sources(stack, config, stop, account_client)
        web = await stack.enter_async_context(pages_client(config, stop)) if config.pages.follow else None
        browser = await stack.enter_async_context(BrowserFetcher(web, config.pages)) \
            if web is not None and config.pages.browser else None
        settings = round_settings(config, await open_media(stack, config, stop))
        stamper = Stamper(conn, await stack.enter_async_context(tsa_client(config, stop)), config.evidence) \
            if config.evidence.tsa else None
        jobs = Jobs(conn, source, web, config, settings, AppriseNotifier(), browser, stamper)
        scheduler = AsyncIOScheduler(timezone=UTC)
        await jobs.register(exclusive=not config.on_postgres)
        stack.push_async_callback(jobs.leave)  # last out: after the jobs have finished
        jobs.install(scheduler, await _sweep_base(conn))
        scheduler.start()
        if source.account is not None:
            from monitor.sources.tg_live import LiveListener

            await LiveListener(source.account, jobs.on_live).start()
        # On the way out, in this order: no new jobs, running ones finish, then the
        # scheduler goes (its shutdown would cancel coroutine jobs mid-transaction).
        stack.callback(scheduler.shutdown, wait=False)
        stack.push_async_callback(jobs.drain, config.schedule.shutdown_timeout)
        stack.callback(scheduler.pause)
        log.info("daemon_started", database=config.archive_name, channels=config.channel_names(),
                 jobs=[job.id for job in scheduler.get_jobs()])
        gone: list[str] = []
        watcher = asyncio.create_task(_watch_archive(conn, stop, gone), name="watch-archive")
        try:
            await stop.wait()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        log.info("daemon_stopping", running=len(jobs.running))
    log.info("daemon_stopped")
    if gone:
        raise ArchiveUnusable(f"{gone[0]}; legation stopped (what it wrote since went with the deleted file): "
                              "restore the archive from a backup, or start again for a new one")


async def _sweep_base(conn: Connection) -> datetime | None:
    """When the sweep last ran (or the daemon first did), from the archive's record of runs."""
    from storage.runs import get_sweep_base

    started = await get_sweep_base(conn, "recheck")
    return datetime.fromisoformat(started.replace("Z", "+00:00")) if started else None


async def _watch_archive(conn: Connection, stop: asyncio.Event, gone: list[str]) -> None:
    """Until the stop: every ARCHIVE_CHECK_INTERVAL, is the file opened still the archive at its path?
    If not, say so and stop the daemon: SQLite would go on writing to a file no one can see."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ARCHIVE_CHECK_INTERVAL)
        if not stop.is_set() and (reason := conn.file_gone()) is not None:
            log.error("archive_file_gone", reason=reason)
            gone.append(reason)
            stop.set()
