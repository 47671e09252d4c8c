"""Commands that give the archive back to readers: browse (the reading room), feed, export-site."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from monitor import install_command
from monitor.cli.base import EXIT_FAILED, EXIT_USAGE, _config, _fail, _run, _since, archived_channel, cli
from monitor.cli.read import _written
from monitor.config.settings import Config

FEEDS = ("channel", "edits", "deletions", "pages", "alerts")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this machine only).")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def browse(ctx: click.Context, host: str, port: int) -> None:
    """Read the archive in a web browser: the reading room, its Atom feeds, and SQL.

    Read-only. / lists the channels; /<channel> is a channel's timeline and
    /<channel>/<post_id> one post with every version, its deletion, the release
    pages it links and a block to cite it (t.me's addresses, with this host).
    /search, /edits, /deletions, /pages and /alerts; /<channel>.atom and the other
    feeds. Datasette answers under /sql/ (pip install '.[browse]' in the checkout).
    """
    config = _config(ctx)
    if not config.on_postgres and not Path(config.database).exists():
        _fail(f"no archive at {config.database}; run 'legation backfill' or 'legation sync' first", EXIT_FAILED)
    try:
        import uvicorn  # noqa: F401 - Datasette's server, brought by the browse extra
    except ImportError:
        _fail(f"browse needs a web server: {install_command('browse')}", EXIT_USAGE)
    if (busy := _port_taken(host, port)) is not None:
        _fail(f"cannot serve on {host}:{port}: {busy}; choose another port with --port (legation browse --port "
              f"{port + 1})", EXIT_FAILED)
    click.echo(f"browse the archive at http://{host}:{port}/ (Ctrl-C stops)", err=True)
    _run(_serve(config, host, port))


async def _serve(config: Config, host: str, port: int) -> None:
    """Serve until SIGINT, SIGTERM or SIGHUP: requests under way finish, then it returns."""
    import uvicorn

    from monitor.read.browse import datasette_app, datasette_available, write_metadata
    from monitor.read.room import ReadingRoom
    from storage.db import open_archive

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # a stop is a clean end here, not a signal to re-raise
            loop = asyncio.get_running_loop()
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, lambda: setattr(self, "should_exit", True))
            try:
                yield
            finally:
                for signum in STOP_SIGNALS:
                    loop.remove_signal_handler(signum)

    async with open_archive(config.database, create=False) as conn:
        # nothing the room does writes to the archive
        await conn.execute("PRAGMA query_only = ON" if conn.engine == "sqlite"
                           else "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        with tempfile.TemporaryDirectory() as tmp:
            sql = None
            if datasette_available() and not config.on_postgres:  # Datasette reads SQLite files only
                metadata = write_metadata(Path(config.database), Path(tmp) / "metadata.json")
                sql = await datasette_app(Path(config.database), metadata, config.search.languages)
            room = ReadingRoom(conn, web_url=config.telegram.web_url, languages=config.search.languages,
                               media_dir=config.media_dir, health=_health(config), sql=sql)
            await Server(uvicorn.Config(room, host=host, port=port, log_level="warning", lifespan="off",
                                        access_log=False, server_header=False)).serve()


def _health(config: Config) -> Any:
    """What ``legation status`` says is wrong with a followed channel; None for one not followed."""
    from monitor.daemon.health import channel_problems

    followed = {name.lower() for name in config.channel_names()}
    return lambda status: channel_problems(status, config) if status.username.lower() in followed else None


def _port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served (in use, no such address), or None if it can be."""
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        return "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))


@cli.command()
@click.argument("kind", type=click.Choice(FEEDS))
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@click.option("--base-url", default="http://127.0.0.1:8001", show_default=True,
              help="Where the reading room (or its static export) is served: entries link there.")
@click.pass_context
def feed(ctx: click.Context, kind: str, name: str | None, output: Path | None, base_url: str) -> None:
    """Write an Atom feed: a channel's posts (feed channel MFARussia), edits, deletions,
    release pages, or one alert rule's alerts (feed alerts RULE). The same feed the
    reading room serves, for a feed reader or a static host."""
    from monitor.read.feeds import write_feed
    from storage.db import open_archive

    config = _config(ctx)
    if kind in ("channel", "alerts") and not name:
        _fail(f"feed {kind} needs a {'channel' if kind == 'channel' else 'rule'} name: "
              f"legation feed {kind} {'MFARussia' if kind == 'channel' else 'RULE'}", EXIT_USAGE)

    async def build() -> bytes | None:
        async with open_archive(config.database, create=False) as conn:
            return await write_feed(conn, kind, name, base_url.rstrip("/"))

    data = _run(build())
    if data is None:
        _fail(f"the archive holds no channel {name}", EXIT_FAILED)
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(data)
    else:
        with _written(str(output), "wb") as out:
            out.write(data)
        click.echo(f"feed written to {output}", err=True)


@cli.command("export-site")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeat for more); default: all.")
@click.option("--since", help="Only posts dated on or after this (2024-05-01).")
@click.pass_context
def export_site(ctx: click.Context, directory: Path, channels: tuple[str, ...], since: str | None) -> None:
    """Write the reading room as static files into DIRECTORY: the same pages with relative
    links, the pictures they show, release pages with their documents, and the feeds; it
    opens from file://, zipped for a colleague, or served by any web server. Run again, it
    rewrites only the files that changed."""
    from monitor.read.site import SiteWriter
    from storage.db import open_archive

    config = _config(ctx)
    since_at = _since(since)

    async def write() -> Any:
        async with open_archive(config.database, create=False) as conn:
            names = tuple([await archived_channel(conn, name) for name in channels])
            writer = SiteWriter(conn, directory, web_url=config.telegram.web_url, media_dir=config.media_dir,
                                channels=names, since=since_at, progress=lambda line: click.echo(line, err=True))
            return await writer.write()

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot write to {directory}: {exc.strerror or exc}", EXIT_FAILED)
    try:
        report = _run(write())  # a missing archive is said by _run, as for every command
    except OSError as exc:  # the disk filled up, the directory went away: what is written stays
        _fail(f"cannot write to {directory}: {exc.strerror or exc}", EXIT_FAILED)
    click.echo(f"{report.posts} post(s) and {report.pages} release page(s) in {directory}: {report.written} file(s) "
               f"written, {report.unchanged} unchanged; open {directory / 'index.html'}", err=True)
