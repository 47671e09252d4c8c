"""The archive connection against aiosqlite: the round trip of one call, and saving posts a batch at a time."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, Row

ROUND_TRIPS = 20_000
SAMPLES = 5
BATCHES = 1_000
STATEMENTS_A_BATCH = 40  # about what saving a page of 20 posts runs: upsert, versions, links, queues


async def _ours(path: Path, calls: int) -> float:
    from storage.sqlite.connection import connect

    conn = await connect(path)
    try:
        started = time.perf_counter()
        for _ in range(calls):
            await conn.execute_fetchall("SELECT 1")
        return (time.perf_counter() - started) / calls
    finally:
        await conn.close()


def _batch(db: sqlite3.Connection, start: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    for n in range(start, start + STATEMENTS_A_BATCH):
        db.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 50))
    db.execute("COMMIT")


async def _ours_batches(path: Path) -> float:
    from storage.sqlite.connection import connect

    conn = await connect(path)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        await conn.execute("DELETE FROM t")
        started = time.perf_counter()
        for batch in range(BATCHES):
            await conn.run(_batch, batch * STATEMENTS_A_BATCH)  # one hop a batch
        return (time.perf_counter() - started) / BATCHES
    finally:
        await conn.close()


async def _aiosqlite_batches(path: Path) -> float:
    import aiosqlite

    from storage.sqlite.connection import PRAGMAS

    async with aiosqlite.connect(path, isolation_level=None) as conn:
        for pragma in PRAGMAS:  # the same settings as ours
            await conn.execute(pragma)
        await conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        await conn.execute("DELETE FROM t")
        started = time.perf_counter()
        for batch in range(BATCHES):  # its public API: one awaited hop a statement
            await conn.execute("BEGIN IMMEDIATE")
            for n in range(batch * STATEMENTS_A_BATCH, (batch + 1) * STATEMENTS_A_BATCH):
                await conn.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 50))
            await conn.execute("COMMIT")
        return (time.perf_counter() - started) / BATCHES


async def _aiosqlite(path: Path, calls: int) -> float:
    import aiosqlite

    async with aiosqlite.connect(path) as conn:
        started = time.perf_counter()
        for _ in range(calls):
            await conn.execute_fetchall("SELECT 1")
        return (time.perf_counter() - started) / calls


def bench_connection() -> list[Row]:
    """Median of SAMPLES runs of ROUND_TRIPS awaited ``SELECT 1`` calls on each connection."""
    try:
        import aiosqlite  # noqa: F401
    except ImportError:
        return [Row("connection round trip", 0, "us", "aiosqlite not installed (pip install '.[bench]')", None, "-")]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        sqlite3.connect(path).close()
        ours = statistics.median(asyncio.run(_ours(path, ROUND_TRIPS)) for _ in range(SAMPLES)) * 1e6
        theirs = statistics.median(asyncio.run(_aiosqlite(path, ROUND_TRIPS)) for _ in range(SAMPLES)) * 1e6
        ours_batch = statistics.median(asyncio.run(_ours_batches(path)) for _ in range(SAMPLES)) * 1e6
        theirs_batch = statistics.median(asyncio.run(_aiosqlite_batches(path)) for _ in range(SAMPLES)) * 1e6
    return [Row("connection round trip (awaited SELECT 1)", ours, "us", "aiosqlite", theirs,
                f"{theirs / ours:.1f}x faster than aiosqlite"),
            Row(f"a batch of {STATEMENTS_A_BATCH} inserts in one transaction", ours_batch, "us",
                "aiosqlite, a statement a hop", theirs_batch, f"{theirs_batch / ours_batch:.1f}x faster than aiosqlite")]


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    for row in bench_connection():
        print(row)
