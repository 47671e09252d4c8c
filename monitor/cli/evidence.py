"""Commands that prove what was captured: verify, stamp, cite."""

from __future__ import annotations

import json
from pathlib import Path

import click

from monitor.cli.base import EXIT_FAILED, EXIT_USAGE, _config, _fail, _run, archived_channel, cli, terminal_safe
from monitor.config.settings import Config

MAX_POST_ID = 2**63 - 1


def _roots(config: Config, tsa_ca: str | None) -> tuple[object, ...]:
    from storage.tokens import trust_roots

    extra = Path(tsa_ca) if tsa_ca else None
    try:
        return trust_roots(config.evidence.tsa_ca, extra)
    except (OSError, ValueError) as exc:
        _fail(f"--tsa-ca {tsa_ca}: not a file of PEM certificates ({exc})", EXIT_USAGE)


@cli.command()
@click.argument("wacz", required=False, type=click.Path(dir_okay=False))
@click.option("--tsa-ca", type=click.Path(exists=True, dir_okay=False),
              help="PEM root(s) of time-stamping authorities to trust, besides [evidence] tsa_ca and the web's roots.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_context
def verify(ctx: click.Context, wacz: str | None, tsa_ca: str | None, as_json: bool) -> None:
    """Check the archive's evidence, or a citation WACZ alone.

    With no argument: the archive's evidence chain end to end (every record's hash and its link
    to the one before, every post version, deletion, page version and media file it names still
    hashing to what was captured, nothing captured since the chain began left out) and every
    stored RFC 3161 time-stamp against its authority's certificate. With WACZ (written by `legation
    cite`): that file alone, offline, with no archive. Exits 1 and names what broke when anything did.
    """
    config = _config(ctx)
    roots = _roots(config, tsa_ca)
    if wacz is not None:
        _verify_citation(ctx, Path(wacz), roots, as_json)
        return
    from storage.db import open_archive
    from storage.evidence import verify_chain

    async def check():  # type: ignore[no-untyped-def]
        async with open_archive(config.database, create=False) as conn:
            return await conn.run(verify_chain, config.media_dir, roots)

    verdict = _run(check())
    if as_json:
        click.echo(json.dumps({"ok": verdict.ok, "records": verdict.records, "newest_hash": verdict.newest_hash,
                               "stamps": verdict.stamps, "newest_stamp": verdict.newest_stamp,
                               "problems": list(verdict.problems)}, ensure_ascii=False, indent=2))
    else:
        for problem in verdict.problems:
            click.echo(terminal_safe(f"FAILED: {problem}"))
        state = "intact" if verdict.ok else f"{len(verdict.problems)} problem(s)"
        click.echo(f"evidence chain: {verdict.records} record(s), {state}"
                   + (f"; newest hash {verdict.newest_hash}" if verdict.newest_hash else ""))
        click.echo(f"time-stamps: {verdict.stamps}" + (f"; newest: {verdict.newest_stamp}" if verdict.newest_stamp
                                                       else "" if verdict.stamps else " ([evidence] tsa is off)"))
    if not verdict.ok:
        ctx.exit(EXIT_FAILED)


def _verify_citation(ctx: click.Context, path: Path, roots: tuple[object, ...], as_json: bool) -> None:
    from monitor.read.cite import verify_citation

    if not path.is_file():
        _fail(f"{path}: no such file", EXIT_USAGE)
    verdict = verify_citation(path, roots)
    if as_json:
        click.echo(json.dumps({"ok": verdict.ok, "cites": verdict.cites, "proven": verdict.proven,
                               "notes": verdict.notes, "problems": verdict.problems}, ensure_ascii=False, indent=2))
    else:
        click.echo(terminal_safe(f"citation of {verdict.cites or '(unknown)'}: {path}"))
        for line in verdict.proven:
            click.echo(terminal_safe(f"  ok: {line}"))
        for line in verdict.notes:
            click.echo(terminal_safe(f"  note: {line}"))
        for line in verdict.problems:
            click.echo(terminal_safe(f"FAILED: {line}"))
        click.echo("verdict: " + ("holds" if verdict.ok else f"does not hold ({len(verdict.problems)} problem(s))"))
    if not verdict.ok:
        ctx.exit(EXIT_FAILED)


@cli.command()
@click.pass_context
def stamp(ctx: click.Context) -> None:
    """Ask each time-stamping authority of [evidence] tsa now to sign the evidence chain's newest
    record (the daemon does this hourly by itself; this is for archives filled by `sync` from cron).
    Exits 1 if an authority gave no usable time-stamp."""
    from monitor.daemon.service import tsa_client
    from monitor.evidence.tsa import Stamper
    from storage.db import open_archive

    config = _config(ctx)
    if not config.evidence.tsa:
        _fail('no time-stamping authority configured: set [evidence] tsa = ["https://…"] (see config.example.toml)',
              EXIT_USAGE)

    async def ask():  # type: ignore[no-untyped-def]
        async with open_archive(config.database, create=False) as conn, tsa_client(config) as client:
            return await Stamper(conn, client, config.evidence).run(force=True)

    counts = _run(ask())
    if counts.get("error"):
        click.echo(terminal_safe(f"FAILED: {counts['error']}"))
    click.echo(f"{counts['stamped']} time-stamp(s) made, {counts['current']} authority(ies) already current, "
               f"{counts['failed']} failed")
    if counts["failed"]:
        ctx.exit(EXIT_FAILED)


@cli.command()
@click.argument("channel")
@click.argument("post_id", type=int, required=False)
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Where to write the WACZ (default: CHANNEL-POST.wacz here).")
@click.pass_context
def cite(ctx: click.Context, channel: str, post_id: int | None, out_path: str | None) -> None:
    """Write a citation package (WACZ) for one post: every version as captured, its deletion, the
    release pages it links and its media, the evidence chain records that prove them, the RFC 3161
    time-stamps that cover them, and a summary for a human reader. CHANNEL POST_ID, or a post URL.
    `legation verify FILE.wacz` checks it offline; ReplayWeb.page opens it."""
    from monitor.cli.read import _written
    from monitor.read.cite import gather_citation, write_wacz
    from monitor.sources.links import post_reference
    from storage.db import open_archive

    config = _config(ctx)
    if post_id is None:
        named_channel, post_id = post_reference(channel.strip())
        if named_channel is None or post_id is None:
            _fail(f"{channel!r} is not a post URL such as https://t.me/MFARussia/22958; or give CHANNEL POST_ID",
                  EXIT_USAGE)
        channel = named_channel
    if not 0 < post_id <= MAX_POST_ID:
        _fail(f"{post_id} is not a post id (1 to {MAX_POST_ID})", EXIT_USAGE)

    async def gather():  # type: ignore[no-untyped-def]
        async with open_archive(config.database, create=False) as conn:
            username = await archived_channel(conn, channel)
            return username, await conn.run(gather_citation, username, post_id, config.media_dir)

    username, citation = _run(gather())
    if citation is None:
        _fail(f"no archived post {post_id} in channel {username}", EXIT_FAILED)
    path = out_path or f"{username}-{post_id}.wacz"
    with _written(path, "wb") as out:
        write_wacz(citation, out)
    stamped = sum(1 for item in citation.items if item.seq is not None)
    click.echo(f"{path}: {len(citation.items)} item(s) ({stamped} in the evidence chain), "
               f"{len(citation.chain)} chain record(s), {len(citation.stamps)} time-stamp(s)")
