"""Commands that prove what was captured: verify."""

from __future__ import annotations

import json

import click

from monitor.cli.base import EXIT_FAILED, _config, _run, cli, terminal_safe


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check the archive's evidence chain end to end: every record's hash and its link to the
    one before, every post version, deletion, page version and media file it names still hashing
    to what was captured, and nothing captured since the chain began left out of it. Exits 1 and names
    what broke when anything did."""
    from storage.db import open_archive
    from storage.evidence import verify_chain

    config = _config(ctx)

    async def check():  # type: ignore[no-untyped-def]
        async with open_archive(config.database, create=False) as conn:
            return await conn.run(verify_chain, config.media_dir)

    verdict = _run(check())
    if as_json:
        click.echo(json.dumps({"ok": verdict.ok, "records": verdict.records, "newest_hash": verdict.newest_hash,
                               "problems": list(verdict.problems)}, ensure_ascii=False, indent=2))
    else:
        for problem in verdict.problems:
            click.echo(terminal_safe(f"FAILED: {problem}"))
        state = "intact" if verdict.ok else f"{len(verdict.problems)} problem(s)"
        click.echo(f"evidence chain: {verdict.records} record(s), {state}"
                   + (f"; newest hash {verdict.newest_hash}" if verdict.newest_hash else ""))
    if not verdict.ok:
        ctx.exit(EXIT_FAILED)
