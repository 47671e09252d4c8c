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
