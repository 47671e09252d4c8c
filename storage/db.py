"""Opening the archive and its transactions: what every part of legation calls, whatever the engine.

The archive is an SQLite file (:mod:`storage.sqlite`) or a PostgreSQL database named by a
``postgresql://`` URL (:mod:`storage.postgres`); either way ``Connection`` runs storage's functions
on a thread of its own, with a DB-API connection that speaks sqlite3's interface.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from storage.errors import ArchiveMissing, ArchiveUnusable
from storage.postgres.connection import is_postgres_url
from storage.sqlite.connection import Connection, connect, converted
from storage.sqlite.migrate import migrate

__all__ = ["Connection", "open_archive", "transaction"]


@asynccontextmanager
async def open_archive(path: str | Path, *, create: bool = True) -> AsyncIterator[Connection]:
    """Connect, bring the schema up to date, and close on exit.

    With ``create=False`` a missing file raises :class:`ArchiveMissing` instead of
    leaving an empty archive behind (for commands that only read).
    """
    if is_postgres_url(str(path)):
        conn = await _open_postgres(str(path))
        try:
            yield conn
        finally:
            await conn.close()
        return
    if not create and str(path) != ":memory:" and not Path(path).exists():
        raise ArchiveMissing(str(path))
    conn = await connect(path)
    try:
        try:
            tables = {row["name"] for row in await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "schema_migrations" not in tables:
                raise ArchiveUnusable(f"not a legation archive ({path}): an SQLite database of something else")
            await migrate(conn)
        except sqlite3.Error as exc:
            raise converted(exc, path) from None
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def transaction(conn: Connection) -> AsyncIterator[Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if the block raises or is cancelled.

    Jobs of the daemon share one connection: their transactions take turns.
    """
    async with conn.writer:
        try:
            await conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # locked past busy_timeout, read-only, ...
            raise converted(exc) from exc
        try:
            yield conn
            await asyncio.shield(conn.commit())
        except sqlite3.Error as exc:  # disk full, I/O error: nothing of it stays; a schema error is a bug
            await _rollback(conn)
            raise converted(exc) from exc
        except BaseException:
            await _rollback(conn)
            raise


async def _open_postgres(url: str) -> Connection:
    """Connect (autocommit: transactions are explicit, as on SQLite), migrate, and serve."""
    from storage.postgres.connection import connect as connect_postgres
    from storage.postgres.connection import migrate as migrate_postgres
    from storage.postgres.connection import password_of
    from storage.postgres.db import PostgresDb
    from storage.sqlite.connection import wrap
    from storage.sqlite.migrate import load_migrations, migrations_dir

    def opened() -> PostgresDb:
        raw = connect_postgres(url)
        try:
            migrate_postgres(raw, load_migrations(migrations_dir() / "postgresql"))
            raw.autocommit = True
            return PostgresDb(raw, password_of(url))
        except BaseException:
            raw.close()
            raise

    return await wrap(await asyncio.to_thread(opened))


async def _rollback(conn: Connection) -> None:
    if conn.in_transaction:
        await asyncio.shield(conn.rollback())
