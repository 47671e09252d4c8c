"""Commands that read the archive out: pages, refetch, export-warc, alerts, export, browse."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import click

from monitor.cli.base import (
    EXIT_FAILED,
    EXIT_USAGE,
    _config,
    _fail,
    _run,
    _since,
    archived_channel,
    cli,
    terminal_safe,
)
from monitor.config.settings import Config
from storage.models import PAGE_STATUSES, AlertRow, PageRow, PageVersion


@cli.command()
@click.option("--status", "status_", type=click.Choice(PAGE_STATUSES), help="Only pages in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--history", "history_of", metavar="URL", help="Every archived version of this page, with word changes.")
@click.pass_context
def pages(ctx: click.Context, status_: str | None, limit: int, as_json: bool, history_of: str | None) -> None:
    """List archived and queued release pages, most recently fetched first.

    Each line: status, time of the last fetch, attempts, URL and title (or the
    error of the last attempt). --json: an array of {url, status, fetched_at, title,
    error, attempts, version}. --history URL: every archived version of that page,
    each after the first as a word diff ([-removed-] {+added+}); with --json an array
    of {version, fetched_at, title, published_at, text, content_hash, sha256}.
    """
    from storage.db import open_archive
    from storage.pages import list_pages

    config = _config(ctx)
    if history_of is not None:
        _page_history(config, history_of, as_json)
        return

    async def read_pages() -> list[PageRow]:
        async with open_archive(config.database, create=False) as conn:
            return await list_pages(conn, status_, limit)

    found = _run(read_pages())
    if as_json:
        click.echo(json.dumps([asdict(row) for row in found], ensure_ascii=False, indent=2))
        return
    for row in found:
        detail = row.title if row.status == "ok" else row.error
        click.echo(terminal_safe(f"{row.status:8} {row.fetched_at or '-':20} {row.attempts:>2}  {row.url}  "
                                 f"{detail or ''}".rstrip()))


def _page_history(config: Config, url: str, as_json: bool) -> None:
    from monitor.read.history import word_diff
    from monitor.sources.links import normalise_url
    from storage.db import open_archive
    from storage.pages import get_page_history

    wanted = normalise_url(url) or url

    async def read() -> list[PageVersion]:
        async with open_archive(config.database, create=False) as conn:
            return await get_page_history(conn, wanted)

    versions = _run(read())
    if not versions:
        _fail(f"no archived version of {wanted} (legation pages lists the archived pages)", EXIT_FAILED)
    if as_json:
        click.echo(json.dumps([asdict(v) for v in versions], ensure_ascii=False, indent=2))
        return
    click.echo(terminal_safe(f"{wanted}: {len(versions)} version(s)"))
    previous: PageVersion | None = None
    for version in versions:
        click.echo(terminal_safe(f"version {version.version}  fetched {version.fetched_at}  sha256 {version.sha256[:16]}"))
        whole = f"{version.title or ''}\n\n{version.text or ''}".strip()
        before = f"{previous.title or ''}\n\n{previous.text or ''}".strip() if previous else None
        body = whole if before is None else word_diff(before, whole)
        click.echo(terminal_safe("\n".join("    " + line for line in body.splitlines())))
        previous = version


@cli.command()
@click.argument("urls", nargs=-1)
@click.option("--status", "status_", type=click.Choice(PAGE_STATUSES), help="Queue every page in this state.")
@click.pass_context
def refetch(ctx: click.Context, urls: tuple[str, ...], status_: str | None) -> None:
    """Queue pages again (by URL, or all of one --status) for the next round.

    Their attempt count starts over; a page whose content changed keeps both
    versions. A URL the archive does not hold is named, and the exit code is 1.
    """
    from monitor.sources.links import normalise_url
    from storage.db import open_archive, transaction
    from storage.pages import get_unknown_pages, requeue_pages

    if not urls and status_ is None:
        raise click.UsageError("give URLs or --status (e.g. --status blocked)")
    config = _config(ctx)
    wanted = [normalise_url(u) or u for u in urls]

    async def queue() -> tuple[int, list[str]]:
        async with open_archive(config.database, create=False) as conn, transaction(conn):
            return await requeue_pages(conn, wanted, status_), await get_unknown_pages(conn, wanted)

    queued, unknown = _run(queue())
    click.echo(f"{queued} page(s) queued")
    for url in unknown:
        click.echo(terminal_safe(f"legation: not in the archive: {url} (only pages that archived posts link "
                                 "to are fetched)"), err=True)
    if unknown:
        sys.exit(EXIT_FAILED)


@cli.command("export-warc")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_context
def export_warc(ctx: click.Context, path: str) -> None:
    """Write every archived page version, and every document attached to a page (PDF, DOCX),
    to PATH as a gzipped WARC file.

    Replay tools such as pywb or ReplayWeb.page open it as the pages were fetched.
    """
    from monitor.read.warc import write_warc
    from storage.db import open_archive
    from storage.pages import iter_attachments, iter_page_versions

    config = _config(ctx)

    async def export(out: BinaryIO) -> int:
        async with open_archive(config.database, create=False) as conn:
            return await write_warc(iter_page_versions(conn), out) + await write_warc(iter_attachments(conn), out)

    if path == "-":
        count = _run(export(sys.stdout.buffer))
        click.echo(f"{count} record(s) written to standard output", err=True)
        return
    with _written(path, "wb") as out:
        count = _run(export(out))
    click.echo(f"{count} record(s) written to {path}")


@contextlib.contextmanager
def _written(path: str, mode: str) -> Iterator[Any]:
    """``path`` opened for writing through a temporary name: complete, or not there at all."""
    partial = Path(f"{path}.partial")
    try:
        out = partial.open(mode, encoding=None if "b" in mode else "utf-8", newline=None if "b" in mode else "")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)
    try:
        with out:
            yield out
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


@cli.group(invoke_without_command=True)
@click.option("--undelivered", is_flag=True, help="Only alerts not delivered yet.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def alerts(ctx: click.Context, undelivered: bool, limit: int, as_json: bool) -> None:
    """List alerts, newest first: rule, what matched, where, and whether it was sent.

    --json: an array of {id, rule, kind, channel, post_id, page_url, url, version,
    terms, context, created_at, delivered_at, attempts, last_error, post_date}.

    Subcommands: `alerts test RULE TEXT` tries a rule on a text; `alerts replay
    --since DATE` runs the rules over the archive.
    """
    from storage.alerts import list_alerts
    from storage.db import open_archive

    if ctx.invoked_subcommand is not None:
        return
    config = _config(ctx)

    async def read_alerts() -> list[AlertRow]:
        async with open_archive(config.database, create=False) as conn:
            return await list_alerts(conn, undelivered, limit)

    found = _run(read_alerts())
    if as_json:
        click.echo(json.dumps([asdict(alert) | {"url": alert.page_url or f"{config.telegram.web_url}/{alert.channel}/"
                                                        f"{alert.post_id}"} for alert in found],
                              ensure_ascii=False, indent=2))
        return
    for alert in found:
        where = alert.page_url or f"{config.telegram.web_url}/{alert.channel}/{alert.post_id}"
        state = f"sent {alert.delivered_at}" if alert.delivered_at else (
            f"failed x{alert.attempts}: {alert.last_error}" if alert.attempts else "pending")
        click.echo(f"{alert.created_at}  {alert.rule}  {alert.kind} v{alert.version}  {where}  "
                   f"[{', '.join(alert.terms)}]  {state}")


@alerts.command("test")
@click.argument("rule")
@click.argument("text")
@click.pass_context
def alerts_test(ctx: click.Context, rule: str, text: str) -> None:
    """Show whether RULE matches TEXT, which terms, and where. Exit 1 if it does not."""
    from monitor.alerts.rules import Matcher

    config = _config(ctx)
    chosen = [r for r in config.alerts.rules if r.name == rule]
    if not chosen:
        names = ", ".join(r.name for r in config.alerts.rules) or "none configured"
        _fail(f"no alert rule named {rule!r} (rules: {names})", EXIT_USAGE)
    matches = Matcher(chosen).match(text)
    if not matches:
        click.echo(f"{rule}: no match")
        sys.exit(EXIT_FAILED)
    for match in matches:
        click.echo(f"{match.rule}: matches {', '.join(match.terms)}\n    {match.context}")


@alerts.command("replay")
@click.option("--since", required=True, help="Posts and pages dated on or after this day (2024-05-01).")
@click.option("--send", is_flag=True, help="Record the matches as alerts and deliver them.")
@click.pass_context
def alerts_replay(ctx: click.Context, since: str, send: bool) -> None:
    """Run the rules over archived posts and pages since a date (e.g. for a new rule).

    Prints what would alert; nothing is recorded or sent without --send.
    Matches already alerted on are not sent again.
    """
    from monitor.alerts.replay import replay_alerts

    config = _config(ctx)
    if not config.alerts.rules:
        _fail("no [[alerts.rules]] configured", EXIT_USAGE)
    since_at = _since(since)
    assert since_at is not None
    report = _run(replay_alerts(config, since_at, send=send))
    for line in report.lines:
        click.echo(line)
    click.echo(f"{len(report.lines)} match(es)" + (f"; {report.recorded} recorded, {report.sent} sent" if send else
                                                   "; nothing recorded (use --send)"))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(("jsonl", "csv")), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), help="File (default or -: stdout).")
@click.option("--channel", help="Only this channel.")
@click.option("--since", help="Posts dated on or after this day (2024-05-01).")
@click.option("--until", help="Posts dated before this day.")
@click.option("--query", help="Only posts matching this search (plain words and \"phrases\", as in search).")
@click.option("--raw", is_flag=True, help="--query is SQLite FTS5 syntax.")
@click.option("--with-pages", is_flag=True, help="Add the archived pages each post links to.")
@click.option("--with-versions", is_flag=True, help="Add every version of each post.")
@click.option("--with-media", is_flag=True, help="Add each media item's file (path under [media] dir, sha256).")
@click.option("--bom", is_flag=True, help="CSV: start with a UTF-8 byte order mark (for Excel).")
@click.pass_context
def export(ctx: click.Context, fmt: str, output: str | None, channel: str | None, since: str | None,
           until: str | None, query: str | None, raw: bool, with_pages: bool, with_versions: bool,
           with_media: bool, bom: bool) -> None:
    """Write posts as JSON lines or CSV (one row per post), oldest first, streaming.

    Dates are ISO-8601 UTC. Memory stays flat however large the archive.
    """
    from monitor.read.export import write_csv, write_jsonl
    from monitor.read.search import build_query
    from storage.db import open_archive
    from storage.export import iter_posts

    config = _config(ctx)
    since_at, until_at = _since(since), _since(until)
    matching = build_query(query, config.search.languages, raw=raw).matching if query else None

    async def stream(out: TextIO) -> int:
        async with open_archive(config.database, create=False) as conn:
            posts = iter_posts(conn, channel=await archived_channel(conn, channel) if channel else None,
                               since=since_at, until=until_at, query=matching,
                               with_pages=with_pages, with_versions=with_versions, with_media=with_media)
            return await (write_csv(posts, out, bom=bom) if fmt == "csv" else write_jsonl(posts, out))

    if output is None or output == "-":
        count = _run(stream(sys.stdout))
    else:
        with _written(output, "w") as out:
            count = _run(stream(out))
    click.echo(f"{count} post(s) exported", err=True)
