"""Leases: which worker runs which job, when several `legation run` share one archive.

A lease names a job (``poll:<channel>``, ``pages``, ``alerts``, ...) and the worker holding it until
``expires_at``. :func:`claim` takes a lease that is free or expired, or renews the caller's own, in
one statement (an upsert whose update only happens when the row is free: PostgreSQL locks the row,
so two workers asking at once get one answer each, one of them yes). A worker's heartbeat renews all
it holds; a worker that dies stops renewing, and its leases pass to the next worker that asks once
they expire. A worker takes at most its share of the channels (of those followed, divided by the
workers alive), so that the work spreads and each worker's own IP keeps its politeness.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from storage.models import utc_in


@dataclass(frozen=True, slots=True)
class Worker:
    id: str
    host: str
    pid: int
    started_at: str
    heartbeat_at: str
    leases: tuple[str, ...]


def register_worker(db: sqlite3.Connection, worker: str, host: str, pid: int, now: str) -> None:
    db.execute("INSERT INTO workers (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at", (worker, host, pid, now, now))


def claim(db: sqlite3.Connection, name: str, worker: str, now: str, ttl: float, *, share_of: int | None = None,
          kind: str = "") -> bool:
    """Take (or renew) the lease ``name`` for ``ttl`` seconds; False when another worker holds it.
    With ``share_of`` (how many jobs of ``kind``, a name prefix, there are), a worker holding its
    share of them already takes no more."""
    held = db.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    if held is not None and held[0] == worker:
        db.execute("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?", (utc_in(ttl), name, worker))
        return True
    if held is not None and held[1] >= now:
        return False
    if share_of is not None and _holds(db, worker, kind) >= _share(db, share_of, now, ttl):
        return False
    db.execute(
        "INSERT INTO leases (name, holder, taken_at, expires_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, taken_at = excluded.taken_at, "
        "expires_at = excluded.expires_at WHERE leases.holder = excluded.holder OR leases.expires_at < ?",
        (name, worker, now, utc_in(ttl), now))
    row = db.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    return row is not None and row[0] == worker


def _holds(db: sqlite3.Connection, worker: str, kind: str) -> int:
    return int(db.execute("SELECT count(*) FROM leases WHERE holder = ? AND name LIKE ?",
                          (worker, kind + "%")).fetchone()[0])


def _share(db: sqlite3.Connection, jobs: int, now: str, ttl: float) -> int:
    """A worker's share of ``jobs``: divided among the workers whose heartbeat is recent."""
    since = utc_in(-ttl)
    alive = int(db.execute("SELECT count(*) FROM workers WHERE heartbeat_at >= ?", (since,)).fetchone()[0])
    return math.ceil(jobs / max(alive, 1))


def heartbeat(db: sqlite3.Connection, worker: str, now: str, ttl: float) -> list[str]:
    """The worker is alive: its leases run ``ttl`` more seconds. Returns the names of leases that
    expired, held by no one alive (a dead worker's jobs, for this one to take now)."""
    db.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (now, worker))
    db.execute("UPDATE leases SET expires_at = ? WHERE holder = ?", (utc_in(ttl), worker))
    return [row[0] for row in db.execute("SELECT name FROM leases WHERE expires_at < ? ORDER BY name", (now,))]


def held_jobs(db: sqlite3.Connection, now: str) -> set[str]:
    """The jobs some worker holds now (a lease not expired)."""
    return {row[0] for row in db.execute("SELECT name FROM leases WHERE expires_at >= ?", (now,))}


def shed_excess(db: sqlite3.Connection, worker: str, jobs: int, kind: str, now: str, ttl: float) -> list[str]:
    """Give up the leases of ``kind`` beyond this worker's share (workers joined since it took
    them): the newest taken go first, for the other workers to take at their next turn."""
    held = [row[0] for row in db.execute("SELECT name FROM leases WHERE holder = ? AND name LIKE ? "
                                         "ORDER BY taken_at DESC, name DESC", (worker, kind + "%"))]
    excess = held[:max(0, len(held) - _share(db, jobs, now, ttl))]
    for name in excess:
        db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, worker))
    return excess


def release(db: sqlite3.Connection, worker: str) -> None:
    """The worker stops: its leases are free at once, its row gone."""
    db.execute("DELETE FROM leases WHERE holder = ?", (worker,))
    db.execute("DELETE FROM workers WHERE id = ?", (worker,))


def forget_dead_workers(db: sqlite3.Connection, before: str) -> None:
    db.execute("DELETE FROM workers WHERE heartbeat_at < ?", (before,))


def get_workers(db: sqlite3.Connection) -> list[Worker]:
    found = []
    for worker, host, pid, started, beat in db.execute(
            "SELECT id, host, pid, started_at, heartbeat_at FROM workers ORDER BY started_at, id").fetchall():
        names = tuple(r[0] for r in db.execute("SELECT name FROM leases WHERE holder = ? ORDER BY name", (worker,)))
        found.append(Worker(worker, host, pid, started, beat, names))
    return found
