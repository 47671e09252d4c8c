"""Commands on whole archives: copy-archive."""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from monitor import install_command
from monitor.cli.base import EXIT_FAILED, EXIT_USAGE, _config, _fail, cli
from monitor.log import register_secrets

PROGRESS_EVERY = 5.0  # seconds between two progress lines of one table


@cli.command("copy-archive")
@click.argument("source")
@click.argument("destination")
@click.option("--batch", default=2_000, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows a transaction of the destination.")
@click.pass_context
def copy_archive(ctx: click.Context, source: str, destination: str, batch: int) -> None:
    """Copy the archive SOURCE into DESTINATION, and check the copy.

    Each is an SQLite file or a PostgreSQL URL (postgresql://user@host/db; a password is better in
    PGPASSWORD or ~/.pgpass; sslmode and sslrootcert work as libpq's URL parameters). The
    destination is created and brought to the current schema; it must be empty, or hold an
    unfinished copy of the same source, which then resumes where it stopped. At the end every
    table's row count and content digest are compared on both sides: exit 0 when all are the same,
    1 naming the tables that differ. Stop `legation run` on the source first: rows it changes
    during the copy differ at the check.
    """
    from storage.copy import CopyRefused, check_tables, copy_tables
    from storage.errors import StorageError
    from storage.postgres.connection import display_url, is_postgres_url, password_of

    _config(ctx)  # logging as configured
    register_secrets([p for p in (password_of(source) if is_postgres_url(source) else None,
                                  password_of(destination) if is_postgres_url(destination) else None) if p])
    if (is_postgres_url(source) or is_postgres_url(destination)) and importlib.util.find_spec("psycopg") is None:
        _fail(f"PostgreSQL needs psycopg: {install_command('postgresql')}", EXIT_USAGE)
    if is_postgres_url(source) and is_postgres_url(destination):
        _fail("both are PostgreSQL: copy one server's database to another with pg_dump | pg_restore", EXIT_USAGE)
    if not is_postgres_url(source) and not Path(source).is_file():
        _fail(f"{source}: no such archive", EXIT_USAGE)
    names = (display_url(source) if is_postgres_url(source) else str(Path(source).resolve()),
             display_url(destination) if is_postgres_url(destination) else str(Path(destination).resolve()))
    try:
        with _side(source, names[0], create=False) as reading, _side(destination, names[1], create=True) as writing:
            click.echo(f"copying {names[0]} into {names[1]}", err=True)
            copied = copy_tables(reading, writing, batch=batch, report=_reporter())
            click.echo(f"copied {sum(copied.values())} row(s) now; checking every table on both sides", err=True)
            checks = check_tables(reading, writing)
    except CopyRefused as exc:
        _fail(str(exc), EXIT_FAILED)
    except StorageError as exc:
        _fail(str(exc), EXIT_FAILED)
    differ = [c for c in checks if not c.same]
    for check in checks:
        state = "same" if check.same else "DIFFERS"
        click.echo(f"{check.table:<20} {check.source_rows:>10} {check.destination_rows:>10}  {state}")
    if differ:
        click.echo(f"{len(differ)} table(s) differ: {', '.join(c.table for c in differ)} (was the source being "
                   "written during the copy?)")
        ctx.exit(EXIT_FAILED)
    click.echo(f"every table the same: {sum(c.source_rows for c in checks)} row(s) in {len(checks)} tables")


def _reporter():  # type: ignore[no-untyped-def]
    last: dict[str, float] = {}

    def report(table: str, rows: int, total: int) -> None:
        now = time.monotonic()
        if rows >= total or now - last.get(table, 0.0) >= PROGRESS_EVERY:
            last[table] = now
            click.echo(f"  {table}: {rows} of {total}" if rows < total else f"  {table}: {rows} row(s)", err=True)

    return report


@contextlib.contextmanager
def _side(target: str, name: str, *, create: bool) -> Iterator[Any]:
    """One archive as the copy reads or writes it; an SQLite destination under its writer lock."""
    from monitor.daemon.lock import WriterLock
    from storage.copy import open_side
    from storage.postgres.connection import is_postgres_url

    with contextlib.ExitStack() as stack:
        if create and not is_postgres_url(target):
            stack.enter_context(WriterLock(Path(target)))
        yield stack.enter_context(open_side(target, name, create=create))
