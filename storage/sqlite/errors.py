"""SQLite's errors as the archive's own (:mod:`storage.errors`), by SQLite's error name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.errors import ArchiveUnusable, StorageError, WriteFailed

# SQLite's own error names (sqlite3.Error.sqlite_errorname), by what they mean for a command.
NOT_A_DATABASE = frozenset({"SQLITE_NOTADB"})
CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_CORRUPT_INDEX", "SQLITE_CORRUPT_SEQUENCE", "SQLITE_CORRUPT_VTAB"})
CANNOT_OPEN = frozenset({"SQLITE_CANTOPEN", "SQLITE_CANTOPEN_ISDIR", "SQLITE_CANTOPEN_NOTEMPDIR",
                         "SQLITE_CANTOPEN_FULLPATH", "SQLITE_PERM", "SQLITE_AUTH"})
# Conditions of the machine, not of the data: the transaction is rolled back and retried later.
PASSING = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_NOMEM",
           "SQLITE_PROTOCOL", "SQLITE_INTERRUPT")



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
