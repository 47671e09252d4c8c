"""Exceptions raised by the storage package.

    StorageError
    ├── MigrationError      a migration failed, was edited after being applied,
    │                       or the database is newer than this legation
    ├── ArchiveMissing      a read-only command found no archive file
    ├── ArchiveUnusable     the file is not an SQLite database, is corrupt, or cannot be opened
    ├── WriteFailed         a transaction could not be written (disk full, I/O error,
    │                       locked for longer than busy_timeout); it was rolled back
    └── SearchQueryError    FTS5 rejected a search string
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# SQLite's own error names (sqlite3.Error.sqlite_errorname), by what they mean for a command.
NOT_A_DATABASE = frozenset({"SQLITE_NOTADB"})
CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_CORRUPT_INDEX", "SQLITE_CORRUPT_SEQUENCE", "SQLITE_CORRUPT_VTAB"})
CANNOT_OPEN = frozenset({"SQLITE_CANTOPEN", "SQLITE_CANTOPEN_ISDIR", "SQLITE_CANTOPEN_NOTEMPDIR",
                         "SQLITE_CANTOPEN_FULLPATH", "SQLITE_PERM", "SQLITE_AUTH"})
# Conditions of the machine, not of the data: the transaction is rolled back and retried later.
PASSING = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_NOMEM",
           "SQLITE_PROTOCOL", "SQLITE_INTERRUPT")


class StorageError(Exception):
    """Base class of every error raised by :mod:`storage`."""


class MigrationError(StorageError):
    """The schema could not be brought up to date."""


class ArchiveMissing(StorageError):
    """A command that only reads was pointed at a database that does not exist."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no archive at {path}; run 'legation backfill' or 'legation sync' first")
        self.path = path


class ArchiveUnusable(StorageError):
    """The archive file cannot be used at all: what it is, and what to do."""


def storage_error(exc: sqlite3.Error, path: str | Path | None = None) -> StorageError | None:
    """The project's error for an SQLite error, by its error name; None for a bug (a schema
    error such as "no such column" must surface as what it is, not as a passing fault)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    where = f" ({path})" if path is not None else ""
    if name in NOT_A_DATABASE:
        return ArchiveUnusable(f"not a legation archive{where}: the file is not an SQLite database")
    if name in CORRUPT:
        return ArchiveUnusable(f"database is corrupt{where}: {exc}; restore a backup, or move the file aside "
                               "and let legation start a new archive")
    if name in CANNOT_OPEN:
        return ArchiveUnusable(f"cannot open the archive{where}: {exc}; check that its directory exists and is "
                               "writable, and that the path is a file")
    if name.startswith(PASSING):
        return WriteFailed(str(exc))
    return None


class WriteFailed(StorageError):
    """A transaction failed in SQLite and was rolled back; nothing of it was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"could not write to the archive ({reason}); nothing was lost, "
                         "the same work is retried on the next run")
        self.reason = reason


class SearchQueryError(StorageError):
    """The full-text search string is not valid FTS5 syntax."""

    def __init__(self, query: str, reason: str) -> None:
        super().__init__(
            f"invalid search query {query!r}: {reason}. "
            'Put words with punctuation in double quotes, e.g. "Lavrov-Wang"'
        )
        self.query = query
        self.reason = reason
