"""The ``legation`` command: thin wrappers that load config, run one coroutine, and exit.

Commands import the machinery they run (sources, service, storage) when they run, so
that ``legation --help`` and ``-V`` answer at once.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor import cli_read, cli_setup  # noqa: F401 - their commands join the group
from monitor.cli_base import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    _config,
    _counts,
    _fail,
    _run,
    _since,
    cli,
    terminal_safe,
)
from monitor.config import Config, normalise_channel_name
from monitor.errors import ConfigError
from monitor.log import STATUS

if TYPE_CHECKING:
    from monitor.service import Mode
    from storage.models import ChannelState, ChannelStatus, PostEvent, PostVersion, SaveResult, SearchHit


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="legation")


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
    from monitor.service import archive_channels

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

    from monitor.service import run_daemon

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


@cli.command()
@click.argument("channel")
@click.argument("post_id", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print {url, versions: [...], events: [...]} as JSON.")
@click.pass_context
def history(ctx: click.Context, channel: str, post_id: int | None, as_json: bool) -> None:
    """Print every version of one post with a word-level diff, and its deletions.

    CHANNEL POST_ID, or a pasted post URL (https://t.me/MFARussia/22958). Removed
    words show as [-word-], added words as {+word+}. --json: {url, versions:
    [{version, text, edited, seen_at}], events: [{kind, at, detail}]}.
    """
    from monitor.history import word_diff
    from monitor.links import post_reference
    from storage.db import open_archive
    from storage.posts import get_post_history

    config = _config(ctx)
    if post_id is None:
        named_channel, post_id = post_reference(channel.strip())
        if named_channel is None or post_id is None:
            _fail(f"{channel!r} is not a post URL such as https://t.me/MFARussia/22958; or give CHANNEL POST_ID",
                  EXIT_USAGE)
        channel = named_channel
    username = normalise_channel_name(channel)
    configured = {name.lower(): name for name in config.channel_names()}
    username = configured.get(username.lower(), username)  # as configured, whatever case was typed

    async def read_history() -> tuple[list[PostVersion], list[PostEvent]] | None:
        async with open_archive(config.database, create=False) as conn:
            return await get_post_history(conn, username, post_id)

    found = _run(read_history())
    if found is None:
        _fail(f"no archived post {post_id} in channel {username}", EXIT_FAILED)
    versions, events = found
    url = f"{config.telegram.web_url}/{username}/{post_id}"
    if as_json:
        click.echo(json.dumps({"url": url, "versions": [asdict(v) for v in versions],
                               "events": [asdict(e) for e in events]}, ensure_ascii=False, indent=2))
        return
    click.echo(f"{url}: {len(versions)} version(s)")
    timeline: list[tuple[str, str]] = []
    previous = None
    for version in versions:
        flag = "  edited" if version.edited else ""
        body = (version.text or "") if previous is None else word_diff(previous.text or "", version.text or "")
        timeline.append((version.seen_at, f"version {version.version}  seen {version.seen_at}{flag}\n{_indent(body)}"))
        previous = version
    timeline += [(e.at, f"{e.kind} {e.at}  {e.detail or ''}".rstrip()) for e in events]
    for _, entry in sorted(timeline, key=lambda item: item[0]):
        click.echo(terminal_safe(entry))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text or "(no text)").splitlines())


@cli.command()
@click.argument("query")
@click.option("--channel", help="Only this channel.")
@click.option("--since", help="Only posts on or after this date (2024-05-01).")
@click.option("--until", help="Only posts before this date.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--raw", is_flag=True, help="QUERY is SQLite FTS5 syntax (AND, OR, NOT, NEAR, prefix*).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits.")
@click.pass_context
def search(ctx: click.Context, query: str, channel: str | None, since: str | None, until: str | None, limit: int,
           raw: bool, as_json: bool) -> None:
    """Full-text search of post text, with highlighted snippets.

    QUERY is plain words and "exact phrases"; punctuation is never an error
    (С.В.Лавров, #SCO, URLs). Each word also finds its other forms (хартия finds
    хартии, Charta finds Charten; [search] languages). Posts with the words as
    written come first, then those with other forms; newest first in each.
    """
    from monitor.search import build_query
    from storage.db import open_archive
    from storage.posts import SNIPPET_CLOSE, SNIPPET_OPEN, search_posts

    config = _config(ctx)
    since_at, until_at = _since(since), _since(until)
    wanted = build_query(query, config.search.languages, raw=raw)

    async def query_archive() -> list[SearchHit]:
        async with open_archive(config.database, create=False) as conn:
            return await search_posts(conn, wanted.exact, wider=wanted.wider,
                                      channel=normalise_channel_name(channel) if channel else None,
                                      since=since_at, until=until_at, limit=limit)

    hits = _run(query_archive())
    web = config.telegram.web_url
    if as_json:
        click.echo(json.dumps([{"channel": hit.username, "post_id": hit.post_id, "date": hit.date,
                                "url": f"{web}/{hit.username}/{hit.post_id}", "exact": hit.exact,
                                "snippet": hit.snippet.replace(SNIPPET_OPEN, "[").replace(SNIPPET_CLOSE, "]")}
                               for hit in hits], ensure_ascii=False, indent=2))
        return
    tty = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    opening, closing = ("\033[1m", "\033[0m") if tty else ("[", "]")
    for hit in hits:
        snippet = terminal_safe(" ".join(hit.snippet.split()), keep=SNIPPET_OPEN + SNIPPET_CLOSE)
        snippet = snippet.replace(SNIPPET_OPEN, opening).replace(SNIPPET_CLOSE, closing)
        click.echo(f"{hit.date or '-'}  {web}/{hit.username}/{hit.post_id}\n    {snippet}")
    if not hits:
        click.echo("no matches", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per channel: posts, newest and oldest id, last sync and error, health; pages by state.

    Exits 1 when a configured channel is unhealthy (never synced, no successful
    poll for longer than [schedule] failing_after, or no new post for longer than
    its stale_after), so that it can serve as a health check.
    """
    from monitor.health import alerts_problem, channel_problems
    from storage.alerts import get_undelivered_summary
    from storage.channels import get_status
    from storage.db import open_archive
    from storage.media import count_media
    from storage.models import ChannelStatus, format_timestamp
    from storage.pages import count_pages, get_page_problems
    from storage.runs import get_recent_runs

    config = _config(ctx)
    day_ago = format_timestamp(datetime.now(UTC) - timedelta(days=1))

    async def read_status() -> tuple[list[ChannelStatus], dict[str, int], list[tuple[Any, ...]],
                                     tuple[int, str | None, int], list[tuple[str, str, str, int]], dict[str, int]]:
        async with open_archive(config.database, create=False) as conn:
            return (await get_status(conn, day_ago), await count_pages(conn), await get_recent_runs(conn, 5),
                    await get_undelivered_summary(conn, config.alerts.deliverable_rules()),
                    await get_page_problems(conn), await count_media(conn))

    rows, page_counts, runs, (undelivered, oldest, failing), page_problems, media = _run(read_status())
    problems = {r.username: channel_problems(r, config) for r in rows}
    alert_problem = alerts_problem(undelivered, oldest, config)
    if alert_problem:
        problems["alerts"] = [alert_problem]
    for name in config.channel_names():
        if name.lower() not in {r.username.lower() for r in rows}:
            problems[name] = ["never synced"]
    unhealthy = {name: p for name, p in problems.items() if p}
    if as_json:
        click.echo(json.dumps({
            "healthy": not unhealthy,
            "channels": [asdict(r) | {"problems": problems[r.username]} for r in rows] + [
                asdict(ChannelStatus(name, None, 0, None, None, None, None, None, None)) | {"problems": ["never synced"]}
                for name in config.channel_names() if name.lower() not in {r.username.lower() for r in rows}],
            "pages": page_counts,
            "page_problems": [dict(zip(("host", "status", "error", "pages"), p, strict=True)) for p in page_problems],
            "media": media,
            "alerts": {"undelivered": undelivered, "oldest_undelivered": oldest, "failing": failing},
            "recent_runs": [dict(zip(("job", "started_at", "finished_at", "outcome", "error"), r, strict=True))
                            for r in runs],
        }, ensure_ascii=False, indent=2))
    else:
        _print_status(config, rows, page_counts, problems)
        click.echo(f"media: {_media_line(media, config)}")
        for host, page_status, error, count in page_problems:
            click.echo(f"pages {page_status} on {host} ({count}): {error}")
        if not config.pages.browser and any(problem[1] == "blocked" for problem in page_problems):
            click.echo('pages behind a JavaScript wall: set [pages] browser = "chromium" (pip install '
                       "'legation[browser]', and a Chromium) to fetch them in a headless browser")
        click.echo(f"alerts: {undelivered} undelivered" + (f" ({failing} failing)" if failing else "")
                   + (f"; {alert_problem}" if alert_problem else ""))
    if unhealthy:
        sys.exit(EXIT_FAILED)


def _media_line(media: dict[str, int], config: Config) -> str:
    """Files kept, and media items not (yet) kept, by why."""
    if not config.media.download and not media:
        return "not kept ([media] download = [])"
    size = media.get("bytes", 0)
    files = f"{media.get('files', 0)} file(s), {size / 1e6:.1f} MB in {config.media_dir}"
    waiting = {k: v for k, v in media.items() if k not in ("ok", "files", "bytes")}
    return files + (f"; items {_counts(waiting)}" if waiting else "") + (
        " (failed: retried while the link is fresh; expired: the link died first; skipped: over [media] max_size)"
        if waiting else "")


def _account_state(config: Config) -> str:
    session = Path(f"{config.telegram.session}.session")
    if not config.telegram.account_configured:
        return "none (web preview only)"
    if not session.exists():
        return "configured, not logged in (run 'legation login')"
    return f"session at {session}"


def _print_status(config: Config, rows: list[ChannelStatus], page_counts: dict[str, int],
                  problems: dict[str, list[str]]) -> None:
    click.echo(f"archive: {config.database}")
    click.echo(f"account: {_account_state(config)}")
    click.echo(f"pages: {_counts(page_counts) or 'none'}")
    header = ("channel", "posts", "last 24h", "newest", "oldest", "backfill", "last sync", "health")
    table = [header] + [
        (r.username, str(r.posts), str(r.posts_last_day), str(r.newest_id or "-"), str(r.oldest_id or "-"),
         "done" if r.backfill_done_at else "partial", r.last_sync_at or "never",
         "; ".join(problems.get(r.username, [])) or "ok")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    for r in rows:
        if r.last_error:
            click.echo(f"last error of {r.username} at {r.last_error_at}: {r.last_error}")
        if r.unparsed_posts:
            click.echo(f"{r.username}: {r.unparsed_posts} post(s) did not parse; kept out of the archive and "
                       "retried (table post_problems)")
        if r.account_member is False:
            click.echo(f"{r.username}: live updates off: the account is not a member (set join = true, or join it "
                       "in Telegram); its polls still archive every post")
        if r.unviewable_posts:
            click.echo(f"{r.username}: {r.unviewable_posts} post(s) the web preview cannot show "
                       "(an account with source = \"auto\" reads them)")
    for name, found in problems.items():
        if found and name not in {r.username for r in rows}:
            click.echo(f"{name}: {'; '.join(found)}")
