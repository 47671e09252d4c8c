"""Commands that capture: run (the daemon), login, backfill, sync and recheck."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from monitor.cli.base import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    _config,
    _counts,
    _fail,
    _run,
    _since,
    cli,
)
from monitor.config.settings import Config
from monitor.errors import ConfigError
from monitor.log import STATUS

if TYPE_CHECKING:
    from monitor.daemon.service import Mode
    from storage.models import ChannelState, SaveResult


def _channels(config: Config, wanted: tuple[str, ...]) -> list[str]:
    try:
        return config.channel_names(wanted)
    except ConfigError as exc:
        where = config.source or "legation.toml (none yet: run 'legation init', or copy config.example.toml)"
        _fail(f"{exc}; add each with 'legation add NAME', or as [[channels]] name = \"...\" in {where}", EXIT_USAGE)


class ProgressLine:
    """Live progress on a terminal (posts saved, oldest id); silent when piped."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, username: str, state: ChannelState, total: SaveResult) -> None:
        if not self.enabled:
            return
        STATUS.show(f"{username}: {total.new} new, {total.changed} changed; "
                    f"newest id {state.head_id or '-'}, oldest id {state.tail_id or '-'}", sys.stderr)

    def done(self) -> None:
        STATUS.finish()


def _archive(ctx: click.Context, channels: tuple[str, ...], mode: Mode, since: str | None = None) -> None:
    from monitor.daemon.service import archive_channels

    config = _config(ctx)
    names = _channels(config, channels)
    progress = ProgressLine()
    try:
        report = _run(archive_channels(config, names, mode=mode, since=since, progress=progress))
    finally:
        progress.done()
    outcomes = report.channels
    for outcome in outcomes:
        click.echo(f"{outcome.username}: {outcome.error or _summary(outcome.saved)}")
    if report.pages is not None:
        click.echo(f"pages: {_counts(report.pages.fetched) or 'nothing fetched'}; "
                   f"queue: {_counts(report.pages.remaining) or 'empty'}")
    if any(o.error for o in outcomes):
        sys.exit(EXIT_FAILED)


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run as a daemon: poll every channel, fetch pages, sweep for edits, until stopped.

    Each poll is one `sync` round for that channel; a channel seen for the first
    time is backfilled unless it sets backfill = false. SIGTERM or SIGINT stop it
    cleanly (running jobs finish their transaction); a second signal stops it at
    once, which the archive survives too.
    """
    config = _config(ctx)
    _run(_until_signalled(config))


async def _until_signalled(config: Config) -> None:
    import asyncio
    import signal

    import structlog

    from monitor.daemon.service import run_daemon

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            os._exit(EXIT_INTERRUPTED)  # second signal: WAL keeps the archive consistent
        structlog.get_logger(__name__).info("signal_received", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: the terminal went away
        loop.add_signal_handler(signum, on_signal, signum)
    await run_daemon(config, stop)


@cli.command()
@click.pass_context
def login(ctx: click.Context) -> None:
    """Log in to a Telegram account (phone, code, 2FA password) for account mode.

    Needs [telegram] api_id and api_hash (or LEGATION_API_ID and LEGATION_API_HASH).
    The session file is created with mode 0600; nothing secret is logged.
    """
    from monitor.errors import AccountOffline
    from monitor.sources.tg_client import connect, create_session_file, make_client

    config = _config(ctx)
    if not config.telegram.account_configured:
        _fail("set [telegram] api_id and api_hash (or LEGATION_API_ID and LEGATION_API_HASH); "
              "get them at my.telegram.org", EXIT_USAGE)
    session = create_session_file(config.telegram.session)

    async def log_in() -> str:
        assert config.telegram.api_id is not None and config.telegram.api_hash is not None
        client = make_client(config.telegram, config.network.proxy)
        await connect(client, config.telegram)  # before any prompt: an unreachable server says so at once
        await client.start(
            phone=lambda: click.prompt("Phone number (international format, e.g. +44...)"),
            code_callback=lambda: click.prompt("Login code Telegram sent you"),
            password=lambda: click.prompt("Two-step verification password", hide_input=True),
        )
        try:
            me = await client.get_me()
        finally:
            await client.disconnect()
        return str(getattr(me, "username", None) or getattr(me, "id", "?"))

    from telethon import errors as telegram_errors

    try:
        who = _run(log_in())
    except telegram_errors.ApiIdInvalidError:
        _fail("config error: telegram.api_id: Telegram does not accept this api_id and api_hash "
              "(check them at my.telegram.org)", EXIT_USAGE)
    except AccountOffline as exc:
        _fail(f"login failed: {exc.reason}", EXIT_FAILED)
    except (telegram_errors.RPCError, OSError) as exc:
        _fail(f"login failed: {type(exc).__name__}: {exc}", EXIT_FAILED)
    os.chmod(session, 0o600)
    click.echo(f"logged in as {who}; session saved to {session} (mode 0600). Keep it secret: it is the account.")


@cli.command()
@click.argument("channels", nargs=-1)
@click.pass_context
def backfill(ctx: click.Context, channels: tuple[str, ...]) -> None:
    """Walk each channel's full history back to its first post, then exit.

    Resumable: interrupted at any moment, the next run continues where it
    stopped. CHANNELS default to every configured channel.
    """
    _archive(ctx, channels, "backfill")


@cli.command()
@click.argument("channels", nargs=-1)
@click.pass_context
def sync(ctx: click.Context, channels: tuple[str, ...]) -> None:
    """One incremental pass: fetch what is new since the last saved post, then exit.

    This is exactly one round of what the daemon does. CHANNELS default to every
    configured channel.
    """
    _archive(ctx, channels, "sync")


def _summary(saved: SaveResult) -> str:
    text = f"{saved.new} new, {saved.changed} changed, {saved.unchanged} unchanged"
    extras = [f"{n} {label}" for n, label in ((saved.deleted, "deleted"), (saved.restored, "restored")) if n]
    return ", ".join([text, *extras])


@cli.command()
@click.argument("channels", nargs=-1)
@click.option("--since", help="Only posts dated on or after this day (2024-05-01); default: all archived.")
@click.pass_context
def recheck(ctx: click.Context, channels: tuple[str, ...], since: str | None) -> None:
    """Re-read archived posts, newest to oldest, for edits and deletions.

    A slower sweep than the re-check window of every sync. Resumable: an
    interrupted sweep continues where it stopped. Posts missing from the pages
    are confirmed on their single-post page before being marked deleted.
    """
    _archive(ctx, channels, "recheck", _since(since))
