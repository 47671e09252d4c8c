"""Applies ``migrations/NNNN_name.sql`` in order, each in one transaction with its record."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from storage.errors import MigrationError
from storage.models import utc_now

if TYPE_CHECKING:
    from storage.sqlite.connection import Connection

FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migrations_dir() -> Traversable:
    """``storage/migrations`` in an installed wheel, ``migrations/`` in a checkout."""
    packaged = resources.files("storage") / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    """Every migration file, in version order; a gap or a duplicate number is an error."""
    directory = directory or migrations_dir()
    found: list[Migration] = []
    for entry in directory.iterdir():
        match = FILENAME.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match["version"]), match["name"], text))
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        raise MigrationError(f"migrations must be numbered 0001, 0002, ... without gaps: {found!r}")
    if not found:
        raise MigrationError(f"no migrations found in {directory}")
    return found


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if _has_code(pending):
                statements.append(pending.strip())
            pending = ""
    if _has_code(pending):
        raise MigrationError(f"incomplete SQL statement at the end of a migration: {pending.strip()[:80]}")
    return statements


def _has_code(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


async def migrate(
    conn: Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply the pending migrations; return those applied now."""
    migrations = migrations if migrations is not None else load_migrations()
    await conn.execute(CREATE_LEDGER)
    rows = await conn.execute_fetchall("SELECT version, name, checksum FROM schema_migrations")
    applied = {row["version"]: (row["name"], row["checksum"]) for row in rows}
    known = {m.version: m for m in migrations}
    newer = sorted(set(applied) - set(known))
    if newer:
        raise MigrationError(
            f"the archive has schema version {newer[-1]}, newer than this legation knows "
            f"({max(known)}); upgrade legation"
        )
    done: list[Migration] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version][1] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was edited after it was "
                    "applied; add a new migration instead"
                )
            continue
        if await _apply(conn, migration):
            done.append(migration)
    return done


async def _apply(conn: Connection, migration: Migration) -> bool:
    await conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have applied it while we waited for the write lock.
        cursor = await conn.execute(
            "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
        )
        if await cursor.fetchone():
            await conn.rollback()
            return False
        for statement in split_statements(migration.sql):
            await conn.execute(statement)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
            (migration.version, migration.name, migration.checksum, utc_now()),
        )
    except sqlite3.Error as exc:
        await conn.rollback()
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name} failed: {exc}"
        ) from exc
    await conn.commit()
    return True
