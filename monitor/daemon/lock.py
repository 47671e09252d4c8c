"""One writer per archive: an exclusive lock file next to the database."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from monitor.errors import LegationError


class ArchiveLocked(LegationError):
    """Another legation process is writing to this archive."""


class WriterLock:
    """``flock`` on ``<database>.lock``; the kernel releases it when the process dies."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}.lock")
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # no such directory, not writable, a directory in the way
            raise ArchiveLocked(f"cannot take the writer lock {self.path}: {exc.strerror or exc}; the archive's "
                                "directory must exist and be writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ArchiveLocked(
                f"another legation (pid {holder}) is writing to {self.path.with_suffix('')}; "
                "search, status and sqlite3 can read it meanwhile"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
