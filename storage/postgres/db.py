"""A PostgreSQL connection that storage's functions use as they use sqlite3's.

storage/ hands its functions a DB-API connection (``execute``, ``executemany``, ``commit``,
rows read by position or by name). :class:`PostgresDb` is that connection on psycopg: each statement
goes through :mod:`storage.postgres.dialect`, rows come back as :class:`Row`, and psycopg's errors
come back as the sqlite3 error classes storage already handles (an integrity error as
``IntegrityError``, a lost server as ``OperationalError``), their text without the password.
Transactions are explicit, as on SQLite: outside ``BEGIN`` ... ``COMMIT`` each statement commits.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from storage.postgres.dialect import translate

# Tables whose rows get their id from the database: an INSERT into one returns it (lastrowid).
IDENTITY = {"channels": "id", "post_events": "id", "releases": "id", "runs": "id", "alerts": "id",
            "evidence_stamps": "id"}
INSERT_INTO = re.compile(r"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+(\w+)", re.I)


def primary_keys(conn: Any) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each table's primary key, in order: ``table -> ((column, type), ...)``."""
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = c.oid "
            "AND a.attnum = ANY(i.indkey) JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.indisprimary AND n.nspname = current_schema() "
            "ORDER BY c.relname, array_position(i.indkey, a.attnum)").fetchall():
        found.setdefault(table, []).append((column, kind))
    return {table: tuple(columns) for table, columns in found.items()}


class Row(tuple):  # type: ignore[type-arg]
    """A row by position or by column name, as sqlite3.Row."""

    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_type(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"_names": names})


class Cursor:
    """A statement's results: ``fetchone``, ``fetchall``, iteration, ``rowcount``, ``lastrowid``."""

    def __init__(self, cursor: Any, lastrowid: int | None = None) -> None:
        self._cursor = cursor
        self.lastrowid = lastrowid
        self.rowcount = cursor.rowcount
        self.description = cursor.description
        self._row = _row_type(tuple(c.name for c in cursor.description)) if cursor.description else None
        self._pending: list[Any] | None = None

    def _wrap(self, row: Any) -> Any:
        return None if row is None or self._row is None else self._row(row)

    def fetchone(self) -> Any:
        if self._pending is not None:
            return self._wrap(self._pending.pop(0)) if self._pending else None
        return self._wrap(self._cursor.fetchone()) if self._row is not None else None

    def fetchall(self) -> list[Any]:
        if self._pending is not None:
            rows, self._pending = self._pending, []
            return [self._wrap(r) for r in rows]
        return [self._wrap(r) for r in self._cursor.fetchall()] if self._row is not None else []

    def fetchmany(self, size: int) -> list[Any]:
        return [self._wrap(r) for r in self._cursor.fetchmany(size)] if self._row is not None else []

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self._cursor.close()


class PostgresDb:
    """psycopg's connection (autocommit: transactions begin with ``BEGIN``) as storage uses sqlite3's."""

    row_factory: Any = None  # rows are always Row; kept for code that sets sqlite3.Row
    engine = "postgresql"

    def __init__(self, conn: Any, secret: str | None = None) -> None:
        self._conn, self._secret = conn, secret
        conn.adapters.register_loader("numeric", _number_loader())  # sum() of integers is numeric: an int, as on SQLite
        self._keys = {table: tuple(name for name, _ in columns) for table, columns in primary_keys(conn).items()}

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        if sql.lstrip().upper().startswith("BEGIN") and self.in_transaction:
            # a transaction left open (its error was not rolled back): end it, or the connection
            # refuses every statement after; SQLite has no such state
            self._conn.execute("ROLLBACK")
        params = _parameters(parameters)
        text = translate(sql, self._keys, bool(params))
        table = INSERT_INTO.match(sql)
        returning = table is not None and table[1] in IDENTITY and "RETURNING" not in text.upper()
        if returning:
            text += f" RETURNING {IDENTITY[table[1]]}"  # type: ignore[index]
        cursor = self._conn.cursor()
        try:
            cursor.execute(text, params or None)
        except Exception as exc:
            raise self._converted(exc, text) from None
        if returning:
            rows = cursor.fetchall()
            result = Cursor(cursor, rows[0][0] if rows else None)
            result.description, result._row = None, None
            return result
        return Cursor(cursor)

    def execute_held(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        """A SELECT whose rows stay on the server until fetched (a cursor WITH HOLD): an export of a
        million posts reads them a batch at a time, and other statements may run between batches."""
        params = _parameters(parameters)
        self._held = getattr(self, "_held", 0) + 1
        cursor = self._conn.cursor(name=f"legation_held_{self._held}", withhold=True)
        cursor.itersize = 500
        try:
            cursor.execute(translate(sql, self._keys, bool(params)), params)
        except Exception as exc:
            cursor.close()
            raise self._converted(exc, sql) from None
        return Cursor(cursor)

    def execute_native(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        """A statement written for PostgreSQL (``%s`` placeholders): not rewritten."""
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, _parameters(parameters))
        except Exception as exc:
            raise self._converted(exc, sql) from None
        return Cursor(cursor)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        batch = [_parameters(row) for row in rows]
        cursor = self._conn.cursor()
        if batch:
            text = translate(sql, self._keys, True)
            try:
                cursor.executemany(text, batch)
            except Exception as exc:
                raise self._converted(exc, text) from None
        return Cursor(cursor)

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self._conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def _converted(self, exc: Exception, sql: str) -> Exception:
        """psycopg's error as the sqlite3 error class storage handles, without the password."""
        import psycopg

        if not isinstance(exc, psycopg.Error):
            return exc
        text = str(exc).strip() or type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        if isinstance(exc, psycopg.IntegrityError):
            return sqlite3.IntegrityError(text)
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return sqlite3.OperationalError(text)
        return sqlite3.DatabaseError(f"{text} (in: {' '.join(sql.split())[:300]})")


def _number_loader() -> type:
    """numeric as SQLite gives it: an int when whole, else a float (never a Decimal)."""
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            try:
                return int(text)
            except ValueError:
                return float(text)

    return NumberLoader


def _parameters(parameters: Sequence[Any] | Mapping[str, Any] | None) -> Any:
    if not parameters:
        return None
    if isinstance(parameters, Mapping):
        return {k: _value(v) for k, v in parameters.items()}
    return [_value(v) for v in parameters]


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)  # SQLite's booleans are 0 and 1, and so are the archive's columns
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value
