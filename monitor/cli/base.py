"""What every command shares: the ``legation`` group, config loading, exits, signals, dates.

Light on imports, so that ``legation --help`` starts fast: the commands import what
they need when they run.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monitor import __version__
from monitor.config.settings import LOG_FORMATS, LOG_LEVELS, Config, load_config, normalise_channel_name
from monitor.daemon.lock import ArchiveLocked
from monitor.errors import ConfigError, UnknownChannel
from monitor.log import STATUS, configure_logging, register_secrets
from storage.errors import SearchQueryError, StorageError
from storage.models import format_timestamp

if TYPE_CHECKING:
    from storage.db import Connection

T = TypeVar("T")
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False), envvar="LEGATION_CONFIG",
    help="TOML config file (default: ./legation.toml if present, else built-in defaults "
         "that follow MFARussia into ./legation.sqlite3).",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), help="Override [log] level.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), help="Override [log] format.")
@click.version_option(__version__, "-V", "--version", prog_name="legation")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str | None, log_format: str | None) -> None:
    """Archive Telegram channels, their edits and deletions, into SQLite."""
    ctx.obj = (config_path, log_level, log_format)


def _config(ctx: click.Context) -> Config:
    path, level, fmt = ctx.obj
    try:
        config = load_config(path)
    except ConfigError as exc:
        _fail(f"config error: {exc}", EXIT_USAGE)
    register_secrets(config.secrets())
    configure_logging(level or config.log.level, fmt or config.log.format)
    return config


def _fail(message: str, code: int) -> NoReturn:
    STATUS.finish()  # a progress line on the terminal ends first: the message starts a line of its own
    click.echo(f"legation: {message}", err=True)
    sys.exit(code)


class Interrupted(Exception):
    """A signal asked a one-shot command to stop; its open transaction was rolled back."""


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(_stopped_by_signals(coroutine))
    except ArchiveLocked as exc:
        _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume", EXIT_INTERRUPTED)
    except Interrupted as exc:
        _fail(f"stopped by {exc}; nothing half-written was kept, run the same command again to resume",
              EXIT_INTERRUPTED)
    except (SearchQueryError, UnknownChannel) as exc:
        _fail(str(exc), EXIT_USAGE)
    except StorageError as exc:
        _fail(str(exc), EXIT_FAILED)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


async def _stopped_by_signals(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine``; SIGTERM or SIGHUP cancel it (transactions roll back) and raise Interrupted.

    The daemon installs its own handlers for a clean stop, which take the place of these.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        task.cancel()

    handled = STOP_SIGNALS if threading.current_thread() is threading.main_thread() else ()  # not in tests' threads
    for signum in handled:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await coroutine
    except asyncio.CancelledError:
        if received:
            raise Interrupted(signal.Signals(received[0]).name) from None
        raise
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


async def archived_channel(conn: Connection, name: str) -> str:
    """The archived channel ``name`` names (any case, @ or t.me link), as the archive spells it;
    :class:`UnknownChannel` with the closest names if there is none."""
    from storage.channels import get_usernames

    wanted = normalise_channel_name(name)
    archived = await get_usernames(conn)
    for username in archived:
        if username.lower() == wanted.lower():
            return username
    raise UnknownChannel(wanted, archived)


def terminal_safe(text: str, keep: str = "") -> str:
    """Text as the archive holds it, less control characters (ESC, BEL, OSC...) that would
    steer the terminal; line breaks and tabs stay."""
    return "".join(c for c in text if c in keep or c in "\n\t" or not (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F))


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2024-05-01 or 2024-05-01T12:00") from None
    return format_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))

