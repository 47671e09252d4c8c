"""Opening the archive: pragmas, transactions, and migration on open."""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage.errors import ArchiveMissing, ArchiveUnusable, storage_error
from storage.migrate import migrate

BUSY_TIMEOUT_MS = 10_000

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA recursive_triggers=ON",
    "PRAGMA cache_size=-16384",  # 16 MiB: most index and FTS pages stay cached during a backfill
    # temp_store stays on disk: sorts and temp indexes of big archives must not grow the process
)


async def connect(path: str | Path) -> aiosqlite.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit) with the house pragmas.

    A file that cannot serve as an archive raises :class:`ArchiveUnusable` (and leaves no
    connection, or thread, behind).
    """
    if str(path) != ":memory:":
        _check_path(Path(path))
    try:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
    except sqlite3.Error as exc:
        raise _converted(exc, path) from None
    conn.row_factory = sqlite3.Row
    try:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
    except sqlite3.Error as exc:
        await conn.close()
        raise _converted(exc, path) from None
    return conn


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise ArchiveUnusable(f"cannot open the archive ({path}): it is a directory, not a file")
    if not path.parent.is_dir():
        raise ArchiveUnusable(f"cannot open the archive ({path}): the directory {path.parent} does not exist")


def _converted(exc: sqlite3.Error, path: str | Path | None = None) -> Exception:
    converted = storage_error(exc, path)
    return converted if converted is not None else exc


@asynccontextmanager
async def open_archive(path: str | Path, *, create: bool = True) -> AsyncIterator[aiosqlite.Connection]:
    """Connect, bring the schema up to date, and close on exit.

    With ``create=False`` a missing file raises :class:`ArchiveMissing` instead of
    leaving an empty archive behind (for commands that only read).
    """
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
            raise _converted(exc, path) from None
        yield conn
    finally:
        await conn.close()


T = TypeVar("T")


async def run_in_connection(
    conn: aiosqlite.Connection, function: Callable[..., T], *args: Any
) -> T:
    """Run ``function(sqlite3_connection, *args)`` on the connection's own thread, in one hop.

    aiosqlite sends every statement to its worker thread and back (a round trip of
    tens to hundreds of microseconds); a batch of statements done as one function
    costs one. This leans on aiosqlite's private ``_execute`` and ``_conn``, so the
    dependency is pinned to tested versions and a test checks they exist.
    """
    return await conn._execute(function, conn._conn, *args)  # type: ignore[no-any-return]


_WRITERS: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if the block raises or is cancelled.

    Jobs of the daemon share one connection: their transactions take turns.
    """
    async with _WRITERS.setdefault(conn, asyncio.Lock()):
        try:
            await conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # locked past busy_timeout, read-only, ...
            raise _converted(exc) from exc
        try:
            yield conn
            await asyncio.shield(conn.commit())
        except sqlite3.Error as exc:  # disk full, I/O error: nothing of it stays; a schema error is a bug
            await _rollback(conn)
            raise _converted(exc) from exc
        except BaseException:
            await _rollback(conn)
            raise


async def _rollback(conn: aiosqlite.Connection) -> None:
    if conn.in_transaction:
        await asyncio.shield(conn.rollback())
