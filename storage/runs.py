"""Queries on job runs: the daemon's own record of what it did."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage.db import Connection


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


async def get_recent_runs(conn: Connection, limit: int = 20) -> list[tuple[Any, ...]]:
    """``(job, started_at, finished_at, outcome, error)``, newest first."""
    rows = await conn.execute_fetchall(
        "SELECT job, started_at, finished_at, outcome, error FROM runs ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [tuple(row) for row in rows]
