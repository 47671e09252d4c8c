"""Opening the archive: pragmas, transactions, and migration on open."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

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

T = TypeVar("T")
Parameters = Sequence[Any] | Mapping[str, Any]


class Connection:
    """The archive's sqlite3 connection, owned by one thread of its own.

    Every call runs on that thread, in the order made; the event loop awaits the result.
    :meth:`run` sends a whole function (a batch of statements) in one hop, where a
    statement at a time costs a hop each (tens to hundreds of microseconds).
    """

    def __init__(self, db: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self._db = db
        self._thread: ThreadPoolExecutor | None = thread
        self.writer = asyncio.Lock()  # jobs sharing the connection take turns at transactions

    @classmethod
    async def open(cls, path: str | Path) -> Connection:
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="legation-archive")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(
                # used by this thread only, but closed or inspected (in_transaction) from the loop's
                thread, functools.partial(sqlite3.connect, str(path), isolation_level=None, check_same_thread=False))
        except BaseException:
            thread.shutdown(wait=False)
            raise
        db.row_factory = sqlite3.Row
        return cls(db, thread)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(sqlite3_connection, *args)`` on the connection's thread."""
        if self._thread is None:
            raise ValueError("the archive connection is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, functools.partial(function, self._db, *args))

    def execute(self, sql: str, parameters: Parameters = ()) -> _Statement:
        """Run one statement: ``await`` it for a :class:`Cursor`, or ``async with`` it."""
        return _Statement(self, sql, parameters)

    async def execute_fetchall(self, sql: str, parameters: Parameters = ()) -> list[Any]:
        return await self.run(lambda db: db.execute(sql, parameters).fetchall())

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        return Cursor(self, await self.run(lambda db: db.executemany(sql, rows)))

    async def executescript(self, script: str) -> None:
        await self.run(lambda db: db.executescript(script))

    async def commit(self) -> None:
        await self.run(lambda db: db.commit())

    async def rollback(self) -> None:
        await self.run(lambda db: db.rollback())

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    @property
    def row_factory(self) -> Any:
        return self._db.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._db.row_factory = factory

    async def close(self) -> None:
        """Close the connection, then end its thread; closing twice is harmless."""
        if self._thread is None:
            return
        try:
            await self.run(lambda db: db.close())
        finally:
            self._thread.shutdown(wait=False)
            self._thread = None


class Cursor:
    """A statement's results, fetched on the connection's thread."""

    def __init__(self, conn: Connection, cursor: sqlite3.Cursor) -> None:
        self._conn = conn
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def description(self) -> Any:
        return self._cursor.description

    async def fetchone(self) -> Any:
        return await self._conn.run(lambda _: self._cursor.fetchone())

    async def fetchall(self) -> list[Any]:
        return await self._conn.run(lambda _: self._cursor.fetchall())

    async def fetchmany(self, size: int) -> list[Any]:
        return await self._conn.run(lambda _: self._cursor.fetchmany(size))

    async def __aiter__(self) -> AsyncIterator[Any]:
        while rows := await self.fetchmany(FETCH_ROWS):
            for row in rows:
                yield row

    async def close(self) -> None:
        await self._conn.run(lambda _: self._cursor.close())


FETCH_ROWS = 256  # rows per hop when a cursor is iterated


class _Statement:
    """``await conn.execute(...)`` gives a :class:`Cursor`; ``async with`` closes it after."""

    def __init__(self, conn: Connection, sql: str, parameters: Parameters) -> None:
        self._conn, self._sql, self._parameters = conn, sql, parameters
        self._cursor: Cursor | None = None

    async def _run(self) -> Cursor:
        sql, parameters = self._sql, self._parameters
        return Cursor(self._conn, await self._conn.run(lambda db: db.execute(sql, parameters)))

    def __await__(self) -> Any:
        return self._run().__await__()

    async def __aenter__(self) -> Cursor:
        self._cursor = await self._run()
        return self._cursor

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._cursor is not None:
            await self._cursor.close()


async def connect(path: str | Path) -> Connection:
    """Open ``path`` in autocommit mode (transactions are explicit) with the house pragmas.

    A file that cannot serve as an archive raises :class:`ArchiveUnusable` (and leaves no
    connection, or thread, behind).
    """
    if str(path) != ":memory:":
        _check_path(Path(path))
    try:
        conn = await Connection.open(path)
    except sqlite3.Error as exc:
        raise _converted(exc, path) from None
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
async def open_archive(path: str | Path, *, create: bool = True) -> AsyncIterator[Connection]:
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


@asynccontextmanager
async def transaction(conn: Connection) -> AsyncIterator[Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if the block raises or is cancelled.

    Jobs of the daemon share one connection: their transactions take turns.
    """
    async with conn.writer:
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


async def _rollback(conn: Connection) -> None:
    if conn.in_transaction:
        await asyncio.shield(conn.rollback())
