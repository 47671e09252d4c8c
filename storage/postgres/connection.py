"""Connecting to a PostgreSQL archive, and bringing its schema up to date.

A URL is libpq's: ``postgresql://user:password@host:port/db?sslmode=verify-full&sslrootcert=ca.pem``;
psycopg hands it to libpq, which honours ``sslmode``, ``sslrootcert`` and the PG* environment
variables (a password in ``PGPASSWORD`` or ``~/.pgpass`` keeps it out of the config file). What
legation prints of a URL is :func:`display_url`: never its password.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from storage.errors import ArchiveUnusable, MigrationError
from storage.models import utc_now

SCHEMES = ("postgresql", "postgres")
LOCK_KEY = 0x6C65676174696F6E  # "legation": one migrating process at a time (pg_advisory_xact_lock)
PASSWORD_IN_TEXT = re.compile(r"(password\s*=\s*)\S+", re.I)

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


def is_postgres_url(text: str | object) -> bool:
    return isinstance(text, str) and text.split("://", 1)[0].lower() in SCHEMES and "://" in text


def display_url(url: str) -> str:
    """The URL as legation prints it: the password (if any) left out, the rest as given."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}" if user else f":***@{netloc}", parts.path,
                       PASSWORD_IN_TEXT.sub(r"\1***", parts.query), parts.fragment))


def password_of(url: str) -> str | None:
    return urlsplit(url).password


def connect(url: str) -> Any:
    """A psycopg connection (autocommit off: each ``with conn.transaction()`` or commit is one);
    :class:`ArchiveUnusable` naming the server, never the password, when none can be made."""
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        password = password_of(url)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if password:
            reason = reason.replace(password, "***")
        raise ArchiveUnusable(f"cannot connect to {display_url(url)}: {reason}") from None


def migrate(conn: Any, migrations: Sequence[Any]) -> list[Any]:
    """Apply the pending migrations (``storage.sqlite.migrate.Migration`` of migrations/postgresql),
    each in its own transaction under an advisory lock, so that several workers starting at once
    apply each exactly once. Returns those applied now."""
    import psycopg

    with conn.transaction():
        conn.execute(CREATE_LEDGER)
    done = []
    known = {m.version: m for m in migrations}
    applied = {row[0]: row[1] for row in conn.execute("SELECT version, checksum FROM schema_migrations")}
    conn.commit()
    newer = sorted(set(applied) - set(known))
    if newer:
        raise MigrationError(f"the archive has schema version {newer[-1]}, newer than this legation knows "
                             f"({max(known)}); upgrade legation")
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(f"PostgreSQL migration {migration.version:04d}_{migration.name} was edited "
                                     "after it was applied; add a new migration instead")
            continue
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)).fetchone():
                    continue  # another worker applied it while this one waited for the lock
                conn.execute(migration.sql)
                conn.execute("INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                             "VALUES (%s, %s, %s, %s)", (migration.version, migration.name, migration.checksum,
                                                         utc_now()))
        except psycopg.Error as exc:
            raise MigrationError(f"PostgreSQL migration {migration.version:04d}_{migration.name} failed: "
                                 f"{str(exc).strip()}") from exc
        done.append(migration)
    return done
