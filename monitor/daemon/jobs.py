"""The daemon's jobs on APScheduler 3.x: each body is one call into what ``sync`` runs."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.alerts.deliver import Notifier, deliver_alerts
from monitor.capture.rounds import (
    RoundSettings,
    backfill_channel,
    recheck_channel,
    run_round,
    save_fetched_posts,
    sync_channel,
)
from monitor.config.settings import ChannelConfig, Config
from monitor.errors import ChannelUnavailable, FetchError, Stopped
from monitor.evidence.tsa import Stamper
from monitor.net.client import HttpClient
from monitor.pages.browser import BrowserFetcher
from monitor.pages.fetch import run_pages
from monitor.sources.events import LiveEvent, PostChanged, PostsDeleted
from monitor.sources.page import PageSource
from storage.channels import ensure_channel, get_username_by_telegram_id
from storage.db import Connection, transaction
from storage.deletions import get_live_posts, save_deletion
from storage.echoes import index_backlog
from storage.leases import (
    claim,
    forget_dead_workers,
    get_workers,
    heartbeat,
    held_jobs,
    register_worker,
    release,
    shed_excess,
)
from storage.models import utc_in, utc_now
from storage.runs import RUNS_FORGOTTEN_AT_ONCE, delete_runs_before, save_run_end, save_run_start

log = structlog.get_logger(__name__)

JITTER_SHARE = 0.1  # a job's start varies by up to a tenth of its interval ...
MAX_JITTER = 30.0  # ... and at most this many seconds
MISFIRE_GRACE = 300  # a job late by more than this is skipped, not run twice
ECHO_INDEX_INTERVAL = 60.0  # seconds between two runs of the echo index's backlog (a no-op once done)
STAMP_TICK = 60.0  # seconds between looks at whether a time-stamping authority is due
ECHO_CHUNKS_A_RUN = 10  # of storage.echoes.BACKLOG_CHUNK posts each
FORGET_RUNS_INTERVAL = 6 * 3600.0  # how often runs older than [schedule] forget_runs_after go

Body = Callable[[], Awaitable[Mapping[str, Any]]]


def _alive(pid: int) -> bool:
    """Whether a process of this host has the id ``pid``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
CHANNEL_ERROR = "error"  # a poll's counts carry this when its channel's round failed


class Jobs:
    """Job bodies, their run records, and the set of running tasks that shutdown waits for."""

    def __init__(self, conn: Connection, source: PageSource, web: HttpClient | None,
                 config: Config, settings: RoundSettings, notifier: Notifier,
                 browser: BrowserFetcher | None = None, stamper: Stamper | None = None) -> None:
        self.conn, self.source, self.web, self.config, self.browser = conn, source, web, config, browser
        self.stamper = stamper
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.ttl = config.schedule.lease_ttl
        self.settings, self.notifier = settings, notifier
        self.running: set[asyncio.Task[Any]] = set()
        self.scheduler: AsyncIOScheduler | None = None

    async def register(self, exclusive: bool) -> None:
        """This process joins the workers of the archive (before its jobs start). ``exclusive``: it
        holds the archive's writer lock (SQLite), so every other worker recorded is gone; otherwise
        the workers recorded on this host whose process is gone are (a restart after kill -9)."""
        host = socket.gethostname()
        async with transaction(self.conn):
            for worker in await self.conn.run(get_workers):
                if exclusive or (worker.host == host and not _alive(worker.pid)):
                    await self.conn.run(release, worker.id)
            await self.conn.run(register_worker, self.worker, host, os.getpid(), utc_now())

    async def leave(self) -> None:
        """This process stops: its leases are free for the other workers at once."""
        async with transaction(self.conn):
            await self.conn.run(release, self.worker)

    async def heartbeat(self) -> None:
        """Renew this worker's leases; run now the jobs whose lease a dead worker let expire."""
        try:
            async with transaction(self.conn):
                expired = await self.conn.run(heartbeat, self.worker, utc_now(), self.ttl)
                await self.conn.run(forget_dead_workers, utc_in(-10 * self.ttl))
                shed = await self.conn.run(shed_excess, self.worker, len(self.config.channels), "poll:", utc_now(),
                                           self.ttl)
                held = await self.conn.run(held_jobs, utc_now())
        except Exception as exc:  # noqa: BLE001 - a heartbeat that fails is tried again; the jobs go on
            log.warning("heartbeat_failed", error=str(exc))
            return
        if shed:
            log.info("leases_shed", jobs=shed)  # more workers now: theirs to take
        # a dead worker's jobs (expired), and channels nobody holds (shed, or never taken): try them now,
        # not at their next turn, which may be an interval away
        free = set(expired) | {f"poll:{c.name}" for c in self.config.channels} - held - set(shed)
        for name in sorted(free):
            if self.scheduler is not None and self.scheduler.get_job(name) is not None:
                self.scheduler.modify_job(name, next_run_time=datetime.now(UTC))
                log.info("job_unheld_run_now", job=name)

    async def _leased(self, job_id: str) -> bool:
        """Whether this worker may run ``job_id`` now (it holds, or has just taken, its lease)."""
        polls = len(self.config.channels)
        async with transaction(self.conn):
            return await self.conn.run(functools.partial(
                claim, share_of=polls if job_id.startswith("poll:") else None, kind="poll:"),
                job_id, self.worker, utc_now(), self.ttl)

    def install(self, scheduler: AsyncIOScheduler, sweep_base: datetime | None = None) -> None:
        """Add every job with a stable id; polls start at once, the sweep one interval after
        ``sweep_base`` (its last run, as the archive recorded it), or at once if that is past."""
        self.scheduler = scheduler
        now = datetime.now(UTC)
        scheduler.add_job(self.heartbeat, "interval", seconds=self.ttl / 4, id="heartbeat", name="heartbeat",
                          max_instances=1, coalesce=True, next_run_time=now, replace_existing=True)
        schedule = self.config.schedule
        for channel in self.config.channels:
            self._add(scheduler, f"poll:{channel.name}", functools.partial(self.poll, channel),
                      self.config.poll_interval(channel), now)
        if self.web is not None and self.config.pages.follow:
            self._add(scheduler, "pages", self.pages, schedule.pages_interval, now)
        self._add(scheduler, "recheck", self.recheck, schedule.recheck_interval,
                  max(now, (sweep_base or now) + timedelta(seconds=schedule.recheck_interval)))
        if self.settings.alerts is not None:
            self._add(scheduler, "alerts", self.alerts, self.config.alerts.deliver_interval, now)
        if schedule.forget_runs_after is not None:
            self._add(scheduler, "forget-runs", self.forget_runs, FORGET_RUNS_INTERVAL, now)
        self._add(scheduler, "echo-index", self.echo_index, ECHO_INDEX_INTERVAL, now)
        if self.stamper is not None:  # it asks an authority only when one is due; the tick finds retries
            self._add(scheduler, "evidence-stamp", self.stamp, STAMP_TICK, now)

    def _add(self, scheduler: AsyncIOScheduler, job_id: str, body: Body, interval: float,
             first: datetime) -> None:
        scheduler.add_job(
            self.run, "interval", seconds=interval, jitter=min(MAX_JITTER, interval * JITTER_SHARE),
            args=[job_id, body], id=job_id, name=job_id, max_instances=1, coalesce=True,
            misfire_grace_time=MISFIRE_GRACE, next_run_time=first, replace_existing=True,
        )

    async def run(self, job_id: str, body: Body) -> None:
        """Run one job body: recorded in ``runs``; a failure is logged and the daemon goes on."""
        task = asyncio.current_task()
        assert task is not None
        self.running.add(task)
        structlog.contextvars.bind_contextvars(job=job_id)
        try:
            try:
                if not await self._leased(job_id):
                    return  # another worker runs it
            except Exception as exc:  # noqa: BLE001 - the archive out of reach: this run is skipped, not the daemon
                log.warning("lease_unavailable", error=str(exc))
                return
            async with transaction(self.conn):
                run_id = await save_run_start(self.conn, job_id, utc_now())
            outcome, counts, error = "ok", None, None
            try:
                counts = await body()
            except Stopped:
                outcome, error = "stopped", "stopped at shutdown"
            except asyncio.CancelledError:  # cut off at shutdown (drain's timeout): recorded, and the end
                await asyncio.shield(self._end(run_id, "stopped", None, "cancelled at shutdown"))
                log.info("job_cancelled_at_shutdown")
                return  # not raised on: the scheduler would log a cancelled job as an error, traceback and all
            except Exception as exc:  # one failing job must not stop the daemon
                outcome, error = "failed", f"{type(exc).__name__}: {exc}"
                log.exception("job_failed", error=error)
            if counts is not None and counts.get(CHANNEL_ERROR):  # the poll's channel failed: so did the run
                outcome, error = "failed", str(counts[CHANNEL_ERROR])
            await self._end(run_id, outcome, counts, error)
        finally:
            structlog.contextvars.unbind_contextvars("job")
            self.running.discard(task)

    async def _end(self, run_id: int, outcome: str, counts: Mapping[str, Any] | None, error: str | None) -> None:
        async with transaction(self.conn):
            await save_run_end(self.conn, run_id, outcome, utc_now(), counts, error)

    async def poll(self, channel: ChannelConfig) -> Mapping[str, Any]:
        """Sync the channel; while its backfill is unfinished (and wanted), continue it."""
        step = backfill_channel if channel.backfill else sync_channel
        [outcome] = await run_round(self.conn, self.source, [channel.name],
                                    functools.partial(step, settings=self.settings))
        return {CHANNEL_ERROR: outcome.error} if outcome.error else dataclasses.asdict(outcome.saved)

    async def pages(self) -> Mapping[str, Any]:
        assert self.web is not None
        outcome = await run_pages(self.conn, self.web, self.config.pages, self.settings.alerts, self.browser)
        return {"queued": outcome.queued, **outcome.fetched}

    async def recheck(self) -> Mapping[str, Any]:
        since = utc_in(-self.config.schedule.recheck_age)
        outcomes = await run_round(self.conn, self.source, self.config.channel_names(),
                                   functools.partial(recheck_channel, since=since, settings=self.settings))
        return {"channels": len(outcomes), "failed": sum(1 for o in outcomes if o.error)}

    async def alerts(self) -> Mapping[str, Any]:
        outcome = await deliver_alerts(self.conn, self.config.alerts, self.notifier, self.config.telegram.web_url)
        return dataclasses.asdict(outcome)

    async def echo_index(self) -> Mapping[str, Any]:
        """Index for echoes the posts archived before the index existed, a chunk a transaction
        (taking turns with the other jobs); nothing to do once the backlog is done."""
        indexed = 0
        for _ in range(ECHO_CHUNKS_A_RUN):
            async with transaction(self.conn):
                count, left = await self.conn.run(index_backlog, utc_now())
            indexed += count
            if not left:
                if self.scheduler is not None and self.scheduler.get_job("echo-index") is not None:
                    self.scheduler.remove_job("echo-index")  # done for good: posts saved now are indexed as saved
                break
        return {"indexed": indexed}

    async def stamp(self) -> Mapping[str, Any]:
        assert self.stamper is not None
        return await self.stamper.run()

    async def forget_runs(self) -> Mapping[str, Any]:
        """Delete the runs older than ``forget_runs_after``: a job run every minute or five,
        kept for good, would outgrow the posts it archives. A transaction at a time, taking
        turns with the other jobs."""
        assert self.config.schedule.forget_runs_after is not None
        cutoff = utc_in(-self.config.schedule.forget_runs_after)
        deleted = 0
        while True:
            async with transaction(self.conn):
                count = await delete_runs_before(self.conn, cutoff)
            deleted += count
            if count < RUNS_FORGOTTEN_AT_ONCE:
                return {"deleted": deleted}

    async def on_live(self, event: LiveEvent) -> None:
        """A live event of the account.

        A new or edited post makes the channel's poll run now: the sweep saves it with
        albums, versions and links exactly as a scheduled poll would. A deletion names
        its channel and is authoritative: the posts are marked deleted at once.
        """
        username = await get_username_by_telegram_id(self.conn, event.telegram_id)
        if not username:
            return
        if isinstance(event, PostChanged):
            if event.edited:
                await self._edited(username, event.post_id)
            elif self.scheduler is not None and self.scheduler.get_job(f"poll:{username}"):
                self.scheduler.modify_job(f"poll:{username}", next_run_time=datetime.now(UTC))
                log.info("live_update", channel=username, post_id=event.post_id)
        elif isinstance(event, PostsDeleted):
            await self._deleted(username, list(event.post_ids))

    async def _edited(self, username: str, post_id: int) -> None:
        """An edit is saved at once from the edited message itself: it may concern a post far older
        than the window a poll re-reads (the sweep would find it a day later)."""
        account = getattr(self.source, "account", None)
        if account is None:
            return
        try:
            posts = await account.fetch_posts(username, [post_id])
        except (FetchError, ChannelUnavailable) as exc:  # the next poll or sweep reads it again
            log.warning("live_edit_not_fetched", channel=username, post_id=post_id, error=str(exc))
            return
        saved = await save_fetched_posts(self.conn, username, posts, self.settings)
        log.info("live_edit", channel=username, post_id=post_id, changed=saved.changed, new=saved.new)

    async def _deleted(self, username: str, post_ids: list[int]) -> None:
        now = utc_now()
        async with transaction(self.conn):
            channel_id = await ensure_channel(self.conn, username, now)
            for post_id in await get_live_posts(self.conn, channel_id, post_ids):
                await save_deletion(self.conn, channel_id, post_id, now, "deleted in Telegram (live update)")
                if self.settings.alerts is not None:
                    await self.settings.alerts.on_deletion(self.conn, channel_id, username, post_id, now)
                log.info("live_deletion", channel=username, post_id=post_id)

    async def drain(self, timeout: float) -> None:
        """Let running jobs finish (their waits end early on stop); cancel what is left."""
        if not self.running:
            return
        _, pending = await asyncio.wait(set(self.running), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("jobs_cancelled", count=len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
