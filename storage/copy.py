"""``legation copy-archive``: an archive copied into another engine's, resumable and verified.

SQLite to PostgreSQL (a researcher's archive moving to the team's server) and back. Tables go in
an order where every row's references arrive before it (:data:`TABLES`), each in batches taken by
its primary key; each batch is written with the record of how far the copy has come
(``archive_copies``) in one transaction of the destination, so that a copy stopped at any moment,
``kill -9`` included, resumes after its last batch, with no row twice and none left out. At the end
each table is compared: its row count, and a digest of its rows that does not depend on their order
(the sum of the SHA-256 of each row, as canonical JSON) computed on each side.

The echo index's backlog bookmark is each archive's own (:data:`OWN_STATE`). SQLite's full-text
tables are not copied: a SQLite destination rebuilds them from its triggers as
the rows arrive; PostgreSQL has its own text search machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import StorageError
from storage.models import utc_now
from storage.postgres.db import IDENTITY, primary_keys

# Every table of the archive, references first (a row's channel before it, its post before its
# links, a release before its pages). tests/test_postgres.py checks this covers both schemas.
TABLES = (
    "channels", "posts", "post_history", "post_events", "deletion_candidates", "post_problems",
    "post_absences", "post_reach", "links", "releases", "pages", "page_versions", "page_attachments",
    "robots", "followed_domains", "media_files", "post_media", "alerts", "runs", "echo_signatures",
    "echo_bands", "echo_pairs", "evidence_chain", "evidence_stamps",
)
# Not copied: archive_copies (each archive's own record of copies into it) and echo_backlog, a
# bookmark in posts' rowids, which the destination does not share; it is set anew (settle_backlog).
OWN_STATE = ("archive_copies", "echo_backlog", "workers", "leases")  # the last two: who runs what, now
DEFAULT_BATCH = 2_000
MODULUS = 2**256


class CopyRefused(StorageError):
    """The destination holds another archive: nothing was written."""


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    source_rows: int
    destination_rows: int
    source_digest: str
    destination_digest: str

    @property
    def same(self) -> bool:
        return (self.source_rows, self.source_digest) == (self.destination_rows, self.destination_digest)


class Side:
    """One archive as the copy reads or writes it: SQLite (sqlite3) or PostgreSQL (psycopg)."""

    placeholder = "?"

    def __init__(self, conn: Any, name: str) -> None:
        self.conn, self.name = conn, name

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def key(self, table: str) -> list[str]:
        raise NotImplementedError

    def order(self, table: str) -> list[str]:
        """The key's columns as ORDER BY and a row comparison take them (text by its bytes)."""
        return self.key(table)

    def rows_after(self, table: str, columns: Sequence[str], after: Sequence[Any] | None, limit: int) -> list[tuple]:
        key = self.order(table)
        where = ""
        if after is not None:
            marks = ", ".join(self.placeholder for _ in after)
            where = f" WHERE ({', '.join(key)}) > ({marks})"
        sql = f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY {', '.join(key)} LIMIT {int(limit)}"
        return [tuple(row) for row in self.conn.execute(sql, tuple(after) if after is not None else ()).fetchall()]

    def all_rows(self, table: str, columns: Sequence[str]) -> Iterator[tuple]:
        raise NotImplementedError

    def count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        raise NotImplementedError

    def progress(self, source: str) -> dict[str, tuple[list[Any] | None, int, str | None]]:
        sql = f"SELECT table_name, copied_to, rows, finished_at FROM archive_copies WHERE source = {self.placeholder}"
        return {table: (json.loads(copied) if copied else None, rows, finished)
                for table, copied, rows, finished in self.conn.execute(sql, (source,)).fetchall()}

    def save_progress(self, source: str, table: str, copied_to: Sequence[Any] | None, rows: int,
                      finished_at: str | None) -> None:
        p = self.placeholder
        self.conn.execute(
            f"INSERT INTO archive_copies (source, table_name, copied_to, rows, finished_at) VALUES ({p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (source, table_name) DO UPDATE SET copied_to = excluded.copied_to, rows = excluded.rows, "
            "finished_at = excluded.finished_at",
            (source, table, json.dumps(list(copied_to)) if copied_to is not None else None, rows, finished_at))

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def after_copy(self, table: str) -> None:
        pass

    def backlog_finished(self) -> bool:
        row = self.conn.execute("SELECT done_to, up_to FROM echo_backlog").fetchone()
        return row is None or row[0] >= row[1]

    def post_bookmark(self) -> int:
        """Where the echo backlog would end: the newest post's place in this archive."""
        return int(self.conn.execute("SELECT count(*) FROM posts").fetchone()[0])

    def settle_backlog(self, finished: bool) -> None:
        """The echo backlog of the copied posts: done when the source's was (the echo tables came with
        the posts), otherwise every post again (indexing a post twice changes nothing)."""
        end = self.post_bookmark()
        p = self.placeholder
        self.begin()
        self.conn.execute("DELETE FROM echo_backlog")
        self.conn.execute(f"INSERT INTO echo_backlog (done_to, up_to) VALUES ({p}, {p})", (end if finished else 0, end))
        self.commit()


class SqliteSide(Side):
    placeholder = "?"

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")]

    def key(self, table: str) -> list[str]:
        keyed = sorted((row[5], row[1]) for row in self.conn.execute(f"PRAGMA table_info({table})") if row[5])
        return [name for _, name in keyed] or ["rowid"]

    def all_rows(self, table: str, columns: Sequence[str]) -> Iterator[tuple]:
        yield from self.conn.execute(f"SELECT {', '.join(columns)} FROM {table}")

    def post_bookmark(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(rowid), 0) FROM posts").fetchone()[0])

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        marks = ", ".join("?" for _ in columns)
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


class PostgresSide(Side):
    placeholder = "%s"

    def columns(self, table: str) -> list[str]:
        return [row[0] for row in self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s ORDER BY ordinal_position", (table,)).fetchall()]

    def _key_types(self, table: str) -> tuple[tuple[str, str], ...]:
        if not hasattr(self, "_keys"):
            self._keys = primary_keys(self.conn)
        return self._keys.get(table, ())

    def key(self, table: str) -> list[str]:
        return [name for name, _ in self._key_types(table)] or ["ctid"]

    def order(self, table: str) -> list[str]:
        # text keys in the order of their bytes, as SQLite orders them, whatever the database's collation
        return [f'{name} COLLATE "C"' if kind == "text" else name for name, kind in self._key_types(table)] or ["ctid"]

    def all_rows(self, table: str, columns: Sequence[str]) -> Iterator[tuple]:
        with self.conn.cursor(name=f"digest_{table}") as cursor:  # server-side: a table need not fit in memory
            cursor.itersize = 5_000
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")
            yield from cursor

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        with self.conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def after_copy(self, table: str) -> None:
        column = IDENTITY.get(table)
        if column:
            self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                              f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)")


def copy_tables(source: Side, destination: Side, *, batch: int = DEFAULT_BATCH,
                report: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """Copy every table not yet copied from ``source``; returns the rows copied now, by table.
    ``report(table, copied, total)`` is told of each batch."""
    done = destination.progress(source.name)
    if not done and destination.count("channels") + destination.count("evidence_chain") > 0:
        raise CopyRefused(f"{destination.name} already holds an archive (channels or evidence): copy into an empty "
                          "one, or resume the copy that filled it from the same source")
    copied: dict[str, int] = {}
    for table in TABLES:
        after, rows, finished = done.get(table, (None, 0, None))
        if finished:
            continue
        columns = source.columns(table)
        key_at = [columns.index(k.split(" ")[0]) for k in source.key(table) if k.split(" ")[0] in columns]
        total, copied[table] = source.count(table), 0
        while True:
            chunk = source.rows_after(table, columns, after, batch) if key_at else list(source.all_rows(table, columns))
            destination.begin()
            try:
                if chunk:
                    destination.insert(table, columns, chunk)
                    after = [chunk[-1][i] for i in key_at] if key_at else None
                    rows += len(chunk)
                    copied[table] += len(chunk)
                last = len(chunk) < batch or not key_at
                destination.save_progress(source.name, table, after, rows, utc_now() if last else None)
                if last:
                    destination.after_copy(table)
                destination.commit()
            except BaseException:
                destination.rollback()
                raise
            if report is not None:
                report(table, rows, total)
            if last:
                break
    if copied:
        destination.settle_backlog(source.backlog_finished())
    return copied


def check_tables(source: Side, destination: Side) -> list[TableCheck]:
    """Each table's rows and order-free digest on both sides."""
    checks = []
    for table in TABLES:
        columns = source.columns(table)
        checks.append(TableCheck(table, source.count(table), destination.count(table),
                                 table_digest(source.all_rows(table, columns)),
                                 table_digest(destination.all_rows(table, columns))))
    return checks


def table_digest(rows: Iterator[tuple]) -> str:
    """The sum, modulo 2**256, of the SHA-256 of each row as canonical JSON (bytes as hex): the same
    for the same rows in any order."""
    total = 0
    for row in rows:
        blob = json.dumps([_canonical(value) for value in row], ensure_ascii=False, separators=(",", ":"))
        total = (total + int.from_bytes(hashlib.sha256(blob.encode("utf-8")).digest(), "big")) % MODULUS
    return f"{total:064x}"


def _canonical(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, float) and value.is_integer():
        return value  # 1.0 stays a float: json keeps "1.0"
    return value


@contextlib.contextmanager
def open_side(target: str, name: str, *, create: bool) -> Iterator[Side]:
    """The archive at ``target`` (a path, or a postgresql:// URL), brought to the current schema,
    as the copy reads (``create=False``: it must exist) or writes it."""
    from storage.db import open_archive
    from storage.postgres.connection import connect, is_postgres_url, migrate
    from storage.sqlite.connection import connect_plain
    from storage.sqlite.migrate import load_migrations, migrations_dir

    if is_postgres_url(target):
        import psycopg

        conn = connect(target)
        try:
            migrate(conn, load_migrations(migrations_dir() / "postgresql"))
            yield PostgresSide(conn, name)
        except psycopg.Error as exc:
            raise StorageError(f"{name}: {str(exc).strip()}") from None
        finally:
            conn.close()
        return

    async def migrated() -> None:
        async with open_archive(target, create=create):
            pass

    asyncio.run(migrated())
    conn = connect_plain(target)
    try:
        yield SqliteSide(conn, name)
    finally:
        conn.close()
