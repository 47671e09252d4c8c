"""The analyst's commands: reach over time, echoes of a statement, gaps of a channel, who amplifies whom."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, TextIO
from xml.etree import ElementTree

import click

from monitor.cli.base import EXIT_FAILED, _config, _fail, _run, archived_channel, cli, terminal_safe
from monitor.cli.read import _written


def _read(ctx: click.Context, channel: str | None, query: Any, *args: Any) -> Any:
    """``query(db, channel, *args)`` on the archive's thread, the channel named as the archive spells it."""
    from storage.db import open_archive

    config = _config(ctx)

    async def read() -> Any:
        async with open_archive(config.database, create=False) as conn:
            name = await archived_channel(conn, channel) if channel else None
            return await conn.run(query, *((name,) if channel else ()), *args)

    return _run(read())


@cli.command()
@click.argument("channel")
@click.argument("post_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def reach(ctx: click.Context, channel: str, post_id: int, as_json: bool) -> None:
    """A post's view count over time: each reading that changed it, one an hour in the post's
    first two days, then one a day (the newest reading of each)."""
    from storage.reach import get_reach

    points = _read(ctx, channel, get_reach, post_id)
    if not points:
        _fail(f"no readings of post {post_id} of {channel} in the archive", EXIT_FAILED)
    if as_json:
        click.echo(json.dumps([{"at": at, "views": views} for at, views in points], indent=2))
        return
    for at, views in points:
        click.echo(f"{at}  {views:>12,}")


@cli.command()
@click.argument("channel")
@click.argument("post_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def echoes(ctx: click.Context, channel: str, post_id: int, as_json: bool) -> None:
    """Where else a post's statement appeared, the first appearance first: forwards, reposts
    without a forward, the same text with changes (edited repost, with its similarity), and
    posts linking the same release page or another language version of it (same release)."""
    from storage.echoes import find_echoes

    found = _read(ctx, channel, find_echoes, post_id)
    if found is None:
        _fail(f"the archive holds no post {post_id} of {channel}", EXIT_FAILED)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(echo) for echo in found], ensure_ascii=False, indent=2))
        return
    for echo in found:
        similarity = f"  {echo.similarity:.2f}" if echo.similarity is not None else ""
        click.echo(terminal_safe(f"{echo.date or '-'}  {echo.channel}/{echo.post_id}  {echo.kind}{similarity}"))
    if len(found) == 1:
        click.echo("no echoes found", err=True)


@cli.command()
@click.argument("channel")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_context
def gaps(ctx: click.Context, channel: str, as_json: bool) -> None:
    """What the archive knows it does not have of a channel: ids between its oldest and newest
    archived post that no source showed (a recheck fills them or finds them gone), posts the
    web preview cannot show, posts that did not parse, and a preview that is disabled."""
    from storage.gaps import get_gaps

    found = _read(ctx, channel, get_gaps)
    if as_json:
        click.echo(json.dumps({**dataclasses.asdict(found), "missing_ids": found.missing_ids}, indent=2))
        return
    ranges = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in found.missing) or "none"
    click.echo(f"{found.channel}: posts {found.oldest}-{found.newest}")
    click.echo(f"  never seen: {ranges} ({found.missing_ids} ids)")
    for label, ids in (("checked and gone", found.absent), ("deleted after archiving", found.deleted),
                       ("unviewable in the web preview", found.unviewable), ("did not parse", found.unparsed)):
        if ids:
            click.echo(f"  {label}: {', '.join(map(str, ids[:50]))}{' ...' if len(ids) > 50 else ''} ({len(ids)})")
    if found.preview_disabled:
        click.echo("  the web preview is disabled (t.me/s/ answers with the channel's info page): only an account "
                   "can read it")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "graphml"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@click.pass_context
def graph(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Who amplifies whom: a channel forwarding another's posts or linking them, as an edge
    list (channel, amplifies, kind, posts, first_at, last_at) for Gephi or networkx."""
    from storage.echoes import get_amplification

    edges = _read(ctx, None, get_amplification)
    if output is None or str(output) == "-":
        _write_graph(edges, fmt, sys.stdout)
    else:
        with _written(str(output), "w") as out:
            _write_graph(edges, fmt, out)
        click.echo(f"{len(edges)} edge(s) written to {output}", err=True)


def _write_graph(edges: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    columns = ("channel", "amplifies", "kind", "posts", "first_at", "last_at")
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(edges)
        return
    root = ElementTree.Element("graphml", xmlns="http://graphml.graphdrawing.org/xmlns")
    for key in columns[2:]:
        ElementTree.SubElement(root, "key", {"id": key, "for": "edge", "attr.name": key,
                                             "attr.type": "int" if key == "posts" else "string"})
    body = ElementTree.SubElement(root, "graph", id="amplification", edgedefault="directed")
    for node in sorted({e["channel"] for e in edges} | {e["amplifies"] for e in edges}, key=str.lower):
        ElementTree.SubElement(body, "node", id=node)
    for number, edge in enumerate(edges):
        element = ElementTree.SubElement(body, "edge", id=f"e{number}", source=edge["channel"],
                                         target=edge["amplifies"])
        for key in columns[2:]:
            ElementTree.SubElement(element, "data", key=key).text = str(edge[key])
    out.write(ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
