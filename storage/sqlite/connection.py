"""The SQLite connection: one sqlite3 connection on a thread of its own, the house pragmas, checkpoints beside the writer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from storage.errors import ArchiveUnusable
from storage.sqlite.errors import storage_error

BUSY_TIMEOUT_MS = 10_000

# The write-ahead log is copied into the archive (a checkpoint) on a thread of its own once
# it holds this much, not by the connection that commits (SQLite's default: about the same,
# 1,000 pages, on the committing thread): the writer does not wait for a checkpoint's
# writes and syncs, and the copies run beside it. Should the writer outpace the copies (a
# slow disk), once the log holds four times as much the writer waits for the copy under way
# and copies the rest itself: the log never grows as long as the writer writes.
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
WRITER_WAITS_WAL_BYTES = 4 * CHECKPOINT_WAL_BYTES
CHECKPOINT_REST_FRAMES = 64  # what the writer copies itself at the end, so that the log can start over
# After a checkpoint lets the log start over, the committing connection cuts the file back
# to this size: its size then tells how much the log holds, with one stat and no query.
WAL_SIZE_LIMIT_BYTES = 0

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA recursive_triggers=ON",
    "PRAGMA cache_size=-16384",  # 16 MiB: most index and FTS pages stay cached during a backfill
    f"PRAGMA wal_autocheckpoint={WRITER_WAITS_WAL_BYTES // 4096}",  # pages; see CHECKPOINT_WAL_BYTES
    f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}",
    # temp_store stays on disk: sorts and temp indexes of big archives must not grow the process
)

T = TypeVar("T")
Parameters = Sequence[Any] | Mapping[str, Any]


class _Thread:
    """One thread that runs calls in the order sent and hands each result to the event loop.

    Leaner than ``run_in_executor`` on a one-worker pool (no concurrent future chained to
    an asyncio one): a round trip costs about half as much, and a backfill makes several
    for every page it saves.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any],
                                             Callable[[], Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def call(self, function: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, function))
        return await future

    def stop(self) -> None:
        """End the thread once the calls sent before have run."""
        self._calls.put(None)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            _run(*call)
            del call  # nothing of a call outlives it on this thread


def _run(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], function: Callable[[], Any]) -> None:
    try:
        result = function()
    except BaseException as exc:  # handed to the caller, as an executor would
        _hand(loop, future, _set_exception, exc)
    else:
        _hand(loop, future, _set_result, result)


def _hand(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
          setter: Callable[[asyncio.Future[Any], Any], None], value: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the call ran: nobody waits for it
        loop.call_soon_threadsafe(setter, future, value)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the caller may have been cancelled meanwhile
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class _Checkpointer:
    """Checkpoints the archive's write-ahead log from a connection and thread of its own once
    the writer's commits have filled it (SQLite's wal.html: "run checkpoints in a separate
    thread"), in PASSIVE mode: it never waits for, or blocks, the writer or readers.

    The log starts over only when a checkpoint has copied all of it, and the writer keeps
    adding to it meanwhile: this thread copies the bulk, again and again while much came in
    during its last copy, and then asks the writer to copy the last few frames itself, after
    its next commit, with nothing coming in.

    While this thread copies, the writer's own checkpoints fail (one checkpoint at a time), so
    a writer faster than the disk would make the log grow as long as it writes: once the log
    holds ``writer_waits_at`` bytes, the writer waits for the copy under way, then copies the
    rest itself.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wal = path + "-wal"
        self._due = threading.Event()
        self._copied = threading.Event()  # set while no copy is under way
        self._copied.set()
        self._rest_to_writer = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.writer_waits_at = WRITER_WAITS_WAL_BYTES
        self.runs = 0  # checkpoints run by this thread (for tests)
        self.writer_runs = 0  # ... and by the writer, of what this thread left it

    def after_commit(self, db: sqlite3.Connection) -> None:
        """On the writer's thread, after it commits: copy the rest that this thread left it,
        or start a checkpoint if the log is full, or wait for the copy under way if it is too full."""
        if self._rest_to_writer:
            self._copy_rest(db)
            return
        if self._stopping:
            return
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            return
        if not self._copied.is_set():  # a copy is under way
            if size >= self.writer_waits_at:
                self._wait_for_copy()
                self._copy_rest(db)
            return
        if size >= CHECKPOINT_WAL_BYTES:
            if self._thread is None or not self._thread.is_alive():  # only connections that write need one
                self._thread = threading.Thread(target=self._serve, name="legation-checkpoint", daemon=True)
                self._thread.start()
            self._copied.clear()
            self._due.set()

    def _wait_for_copy(self) -> None:
        while not self._copied.wait(0.1):
            if self._thread is None or not self._thread.is_alive():
                self._copied.set()  # a thread that died (it should not) never will

    def _copy_rest(self, db: sqlite3.Connection) -> None:
        self._rest_to_writer = False
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.writer_runs += 1
        except sqlite3.Error:
            pass  # the commit stands: a checkpoint that fails now is tried again later

    def stop(self) -> None:
        """Wait for a checkpoint under way, and end the thread."""
        self._stopping = True
        self._due.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error:
            return  # the writer waits for no dead thread, and starts another at the next copy
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    return
                try:
                    self._copy(db)
                except sqlite3.Error:
                    pass  # failing now: a later commit asks again, and the writer waits at its own limit
                finally:
                    self._copied.set()
        finally:
            db.close()

    def _copy(self, db: sqlite3.Connection) -> None:
        in_log_before = 0
        while not self._stopping:
            # (busy, frames in the log, frames copied), as far as this checkpoint saw the log
            busy, in_log, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
            self.runs += 1
            if busy:
                return
            if in_log - in_log_before <= CHECKPOINT_REST_FRAMES:
                self._rest_to_writer = True
                return
            in_log_before = in_log  # copy again what came in while this ran


class Connection:
    """The archive's sqlite3 connection, owned by one thread of its own.

    Every call runs on that thread, in the order made; the event loop awaits the result.
    :meth:`run` sends a whole function (a batch of statements) in one hop, where a
    statement at a time costs a hop each (tens of microseconds).
    """

    def __init__(self, db: sqlite3.Connection, thread: _Thread, checkpointer: _Checkpointer | None = None) -> None:
        self._db = db
        self._thread: _Thread | None = thread
        self.checkpointer = checkpointer
        self.writer = asyncio.Lock()  # jobs sharing the connection take turns at transactions
        self._file: tuple[Path, tuple[int, int]] | None = None  # the path opened, and its (device, inode)

    @classmethod
    async def open(cls, path: str | Path) -> Connection:
        thread = _Thread("legation-archive")
        try:
            db = await thread.call(
                # used by this thread only, but closed or inspected (in_transaction) from the loop's
                functools.partial(sqlite3.connect, str(path), isolation_level=None, check_same_thread=False))
        except BaseException:
            thread.stop()
            raise
        db.row_factory = sqlite3.Row
        conn = cls(db, thread, None if str(path) == ":memory:" else _Checkpointer(str(path)))
        conn._file = _identity(path)
        return conn

    def file_gone(self) -> str | None:
        """Why the file this connection opened is no longer the archive at its path (deleted, or
        another file put there), or None: SQLite goes on writing to an unlinked file, unseen."""
        if self._file is None:
            return None
        path, identity = self._file
        now = _identity(path)
        if now is None:
            return f"the archive file {path} was deleted while legation ran"
        if now[1] != identity:
            return f"the archive file {path} was replaced by another file while legation ran"
        return None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(sqlite3_connection, *args)`` on the connection's thread."""
        if self._thread is None:
            raise ValueError("the archive connection is closed")
        return await self._thread.call(functools.partial(function, self._db, *args))

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
        await self.run(self._commit)

    def _commit(self, db: sqlite3.Connection) -> None:
        db.commit()
        if self.checkpointer is not None:
            self.checkpointer.after_commit(db)

    async def rollback(self) -> None:
        await self.run(lambda db: db.rollback())

    def _close(self, db: sqlite3.Connection) -> None:
        if self.checkpointer is not None:  # first: the last connection to close checkpoints all
            self.checkpointer.stop()
        db.close()

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    @property
    def engine(self) -> str:
        """``sqlite``, or the engine of the connection :func:`wrap` serves (``postgresql``)."""
        return getattr(self._db, "engine", "sqlite")

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
            await self.run(self._close)
        finally:
            self._thread.stop()
            self._thread = None


def _identity(path: str | Path) -> tuple[Path, tuple[int, int]] | None:
    """The file at ``path`` as (path, (device, inode)); None for :memory: or no file."""
    if str(path) == ":memory:":
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return Path(path), (found.st_dev, found.st_ino)


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
        raise converted(exc, path) from None
    try:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
    except sqlite3.Error as exc:
        await conn.close()
        raise converted(exc, path) from None
    return conn


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise ArchiveUnusable(f"cannot open the archive ({path}): it is a directory, not a file")
    if not path.parent.is_dir():
        raise ArchiveUnusable(f"cannot open the archive ({path}): the directory {path.parent} does not exist")


def converted(exc: sqlite3.Error, path: str | Path | None = None) -> Exception:
    converted = storage_error(exc, path)
    return converted if converted is not None else exc


def connect_plain(path: str | Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the house pragmas, autocommit (transactions explicit): for
    work that runs on one thread from start to end, such as ``copy-archive``."""
    _check_path(Path(path))
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            conn.execute(pragma)
    except sqlite3.Error as exc:
        raise converted(exc, path) from None
    return conn


async def wrap(db: Any, name: str = "legation-archive") -> Connection:
    """Another engine's DB-API connection (``storage.postgres.db.PostgresDb``) served the same way:
    its own thread, calls in order, no checkpoints."""
    thread = _Thread(name)
    return Connection(db, thread, None)
