"""Commands that answer questions about the archive: history, search and status."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor import install_command
from monitor.cli.base import (
    EXIT_FAILED,
    EXIT_USAGE,
    _config,
    _counts,
    _fail,
    _run,
    _since,
    archived_channel,
    cli,
    terminal_safe,
)
from monitor.config.settings import Config

MAX_POST_ID = 2**63 - 1  # SQLite's largest integer
LINKERS_SHOWN = 5  # posts named under a page found by search; the rest counted

if TYPE_CHECKING:
    from storage.evidence import EvidenceState
    from storage.leases import Worker
    from storage.models import ChannelStatus, PageHit, PostEvent, PostVersion, SearchHit

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
    from monitor.read.history import word_diff
    from monitor.sources.links import post_reference
    from storage.db import open_archive
    from storage.posts import get_post_history

    config = _config(ctx)
    if post_id is None:
        named_channel, post_id = post_reference(channel.strip())
        if named_channel is None or post_id is None:
            _fail(f"{channel!r} is not a post URL such as https://t.me/MFARussia/22958; or give CHANNEL POST_ID",
                  EXIT_USAGE)
        channel = named_channel
    if not 0 < post_id <= MAX_POST_ID:
        _fail(f"{post_id} is not a post id (1 to {MAX_POST_ID})", EXIT_USAGE)

    async def read_history() -> tuple[str, tuple[list[PostVersion], list[PostEvent]] | None]:
        async with open_archive(config.database, create=False) as conn:
            username = await archived_channel(conn, channel)
            return username, await get_post_history(conn, username, post_id)

    username, found = _run(read_history())
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
    """Full-text search of posts and archived release pages, with highlighted snippets.

    QUERY is plain words and "exact phrases", all of which must occur; OR takes
    either side, NOT word or -word leaves it out. Punctuation is never an error
    (С.В.Лавров, #SCO, URLs). Each word also finds its other forms (хартия finds
    хартии, Charta finds Charten; [search] languages). Posts with the words as
    written come first, then those with other forms; newest first in each. Release
    pages follow the posts, each with the posts that link it. --json: kind "post" or
    "page" in each hit.
    """
    from monitor.read.search import build_query
    from storage.db import open_archive
    from storage.search import search_pages, search_posts

    config = _config(ctx)
    since_at, until_at = _since(since), _since(until)
    wanted = build_query(query, config.search.languages, raw=raw)

    async def query_archive() -> tuple[list[SearchHit], list[PageHit]]:
        async with open_archive(config.database, create=False) as conn:
            username = await archived_channel(conn, channel) if channel else None
            return (await search_posts(conn, wanted.exact, wider=wanted.wider, channel=username, since=since_at,
                                       until=until_at, limit=limit),
                    await search_pages(conn, wanted.exact, wider=wanted.wider, channel=username, since=since_at,
                                       until=until_at, limit=limit))

    hits, pages = _run(query_archive())
    web = config.telegram.web_url
    if as_json:
        click.echo(json.dumps([{"kind": "post", "channel": hit.username, "post_id": hit.post_id, "date": hit.date,
                                "url": f"{web}/{hit.username}/{hit.post_id}", "exact": hit.exact,
                                "snippet": _marked(hit.snippet, "[", "]")} for hit in hits]
                              + [{"kind": "attachment" if page.attachment_of else "page", "url": page.url,
                                  "title": page.title, "date": page.date, "exact": page.exact,
                                  "snippet": _marked(page.snippet, "[", "]"),
                                  **({"page": page.attachment_of} if page.attachment_of else {}),
                                  "linked_by": [f"{web}/{c}/{p}" for c, p in page.linked_by]} for page in pages],
                              ensure_ascii=False, indent=2))
        return
    tty = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    opening, closing = ("\033[1m", "\033[0m") if tty else ("[", "]")
    for hit in hits:
        click.echo(f"{hit.date or '-'}  {web}/{hit.username}/{hit.post_id}\n    {_shown(hit.snippet, opening, closing)}")
    for page in pages:
        kind = f"document of {page.attachment_of}:" if page.attachment_of else "page"
        click.echo(terminal_safe(f"{page.date or '-'}  {kind} {page.url}  {page.title or ''}".rstrip())
                   + f"\n    {_shown(page.snippet, opening, closing)}")
        if page.linked_by:
            click.echo("    linked by " + ", ".join(f"{web}/{c}/{p}" for c, p in page.linked_by[:LINKERS_SHOWN])
                       + (f" and {len(page.linked_by) - LINKERS_SHOWN} more" if len(page.linked_by) > LINKERS_SHOWN
                          else ""))
    if not hits and not pages:
        click.echo("no matches", err=True)


def _marked(snippet: str, opening: str, closing: str) -> str:
    from storage.search import SNIPPET_CLOSE, SNIPPET_OPEN

    return snippet.replace(SNIPPET_OPEN, opening).replace(SNIPPET_CLOSE, closing)


def _shown(snippet: str, opening: str, closing: str) -> str:
    from storage.search import SNIPPET_CLOSE, SNIPPET_OPEN

    return _marked(terminal_safe(" ".join(snippet.split()), keep=SNIPPET_OPEN + SNIPPET_CLOSE), opening, closing)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per channel: posts, newest and oldest id, last sync and error, health; pages by state.

    Exits 1 when a configured channel is unhealthy (never synced, no successful
    poll for longer than [schedule] failing_after, or no new post for longer than
    its stale_after), so that it can serve as a health check.
    """
    from monitor.daemon.health import alerts_problem, channel_problems, stamps_problem
    from storage.alerts import get_undelivered_summary
    from storage.channels import get_status
    from storage.db import open_archive
    from storage.evidence import get_evidence_state
    from storage.gaps import get_gaps
    from storage.leases import get_workers
    from storage.media import count_media
    from storage.models import ChannelStatus, format_timestamp
    from storage.pages import count_pages, get_page_problems
    from storage.runs import get_recent_runs

    config = _config(ctx)
    day_ago = format_timestamp(datetime.now(UTC) - timedelta(days=1))

    async def read_status() -> tuple[list[ChannelStatus], dict[str, int], list[tuple[Any, ...]],
                                     tuple[int, str | None, int], list[tuple[str, str, str, int]], dict[str, int],
                                     EvidenceState, list[Worker]]:
        async with open_archive(config.database, create=False) as conn:
            statuses = [replace(status, gap_ids=gaps.missing_ids if (gaps := await conn.run(get_gaps, status.username))
                                else 0) for status in await get_status(conn, day_ago)]
            return (statuses, await count_pages(conn), await get_recent_runs(conn, 5),
                    await get_undelivered_summary(conn, config.alerts.deliverable_rules()),
                    await get_page_problems(conn), await count_media(conn), await conn.run(get_evidence_state),
                    await conn.run(get_workers))

    rows, page_counts, runs, (undelivered, oldest, failing), page_problems, media, evidence, workers = \
        _run(read_status())
    problems = {r.username: channel_problems(r, config) for r in rows}
    alert_problem = alerts_problem(undelivered, oldest, config)
    if alert_problem:
        problems["alerts"] = [alert_problem]
    evidence_problem = stamps_problem(evidence, config)
    if evidence_problem:
        problems["evidence"] = [evidence_problem]
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
            "evidence": asdict(evidence) | {"problem": evidence_problem},
            "workers": [asdict(w) for w in workers],
            "recent_runs": [dict(zip(("job", "started_at", "finished_at", "outcome", "error"), r, strict=True))
                            for r in runs],
        }, ensure_ascii=False, indent=2))
    else:
        _print_status(config, rows, page_counts, problems)
        click.echo(f"media: {_media_line(media, config)}")
        for host, page_status, error, count in page_problems:
            click.echo(f"pages {page_status} on {host} ({count}): {error}")
        if not config.pages.browser and any(problem[1] == "blocked" for problem in page_problems):
            click.echo('pages behind a JavaScript wall: set [pages] browser = "chromium" '
                       f"({install_command('browser')}, and a Chromium: sudo apt install chromium) "
                       "to fetch them in a headless browser")
        click.echo(f"alerts: {undelivered} undelivered" + (f" ({failing} failing)" if failing else "")
                   + (f"; {alert_problem}" if alert_problem else ""))
        click.echo(f"evidence: {_evidence_line(evidence, config)}" + (f"; {evidence_problem}" if evidence_problem else ""))
        for worker in workers:  # the `legation run` processes sharing the archive
            click.echo(f"worker {worker.id}: heartbeat {worker.heartbeat_at}, since {worker.started_at}, "
                       f"{len(worker.leases)} job(s): {', '.join(worker.leases) or '-'}")
    if unhealthy:
        sys.exit(EXIT_FAILED)


def _evidence_line(evidence: EvidenceState, config: Config) -> str:
    line = f"{evidence.records} chain record(s)"
    if evidence.stamped_at:
        line += f"; newest time-stamp {evidence.stamped_at} by {evidence.stamped_by} (record {evidence.stamped_seq})"
    elif not config.evidence.tsa:
        line += "; no time-stamps ([evidence] tsa is off)"
    return line


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
    click.echo(f"archive: {config.archive_name}")
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
        if r.gap_ids:
            click.echo(f"{r.username}: {r.gap_ids} id(s) between its oldest and newest post never seen (legation gaps "
                       f"{r.username}; a recheck checks them)")
        if r.unviewable_posts:
            click.echo(f"{r.username}: {r.unviewable_posts} post(s) the web preview cannot show "
                       "(an account with source = \"auto\" reads them)")
    for name, found in problems.items():
        if found and name not in {r.username for r in rows}:
            click.echo(f"{name}: {'; '.join(found)}")
