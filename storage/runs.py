"""Queries on job runs: the daemon's own record of what it did."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage.db import Connection

RUNS_FORGOTTEN_AT_ONCE = 5_000  # a transaction's worth: the other jobs wait for no more than that


async def save_run_start(conn: Connection, job: str, now: str) -> int:
    cursor = await conn.execute("INSERT INTO runs (job, started_at) VALUES (?, ?)", (job, now))
    return int(cursor.lastrowid or 0)


async def save_run_end(
    conn: Connection, run_id: int, outcome: str, now: str,
    counts: Mapping[str, Any] | None = None, error: str | None = None,
) -> None:
    await conn.execute(
        "UPDATE runs SET finished_at = ?, outcome = ?, counts = ?, error = ? WHERE id = ?",
        (now, outcome, json.dumps(dict(counts), sort_keys=True) if counts else None, error, run_id),
    )


async def get_sweep_base(conn: Connection, job: str) -> str | None:
    """When the last run of ``job`` started; where it never ran, when the daemon's first recorded
    run started (a daemon restarted daily still sweeps once its interval has passed)."""
    rows = await conn.execute_fetchall(
        "SELECT coalesce((SELECT max(started_at) FROM runs WHERE job = ?), (SELECT min(started_at) FROM runs))",
        (job,))
    return rows[0][0] if rows else None


async def get_recent_runs(conn: Connection, limit: int = 20) -> list[tuple[Any, ...]]:
    """``(job, started_at, finished_at, outcome, error)``, newest first."""
    rows = await conn.execute_fetchall(
        "SELECT job, started_at, finished_at, outcome, error FROM runs ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [tuple(row) for row in rows]


async def delete_runs_before(conn: Connection, cutoff: str, limit: int = RUNS_FORGOTTEN_AT_ONCE) -> int:
    """Delete up to ``limit`` of the oldest runs started before ``cutoff``; how many went.

    Runs are numbered in the order they start: the first run started at ``cutoff`` or later
    bounds the old ones, found by reading from the oldest (a few rows, once the old are gone).
    """
    cursor = await conn.execute(
        """DELETE FROM runs WHERE id IN (
            SELECT id FROM runs
            WHERE id < coalesce((SELECT id FROM runs WHERE started_at >= :cutoff ORDER BY id LIMIT 1),
                                (SELECT max(id) + 1 FROM runs))
            ORDER BY id LIMIT :limit)""",
        {"cutoff": cutoff, "limit": limit},
    )
    return int(cursor.rowcount)
