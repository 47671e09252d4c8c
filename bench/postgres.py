"""PostgreSQL beside SQLite: copy-archive's speed, and full-text search p95 on the copy (PostgreSQL's
GIN index on archive_words) against the SQLite archive's FTS5 search (legation search)."""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from common import Row
from micro import WORDS_EN, WORDS_RU, make_posts

from monitor.read.search import build_query
from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.posts import save_posts
from storage.search import search_posts

PG_SEARCH = """
SELECT c.username, p.post_id, p.date FROM posts p JOIN channels c ON c.id = p.channel_id
WHERE archive_words(p.text) @@ archive_query(%s) ORDER BY p.date DESC LIMIT 20
"""


def bench_postgres(count: int = 100_000, queries: int = 200) -> list[Row]:
    from pgserver import empty_database, server_binaries, throwaway_cluster

    from storage.copy import check_tables, copy_tables, open_side

    if server_binaries() is None:
        return [Row("PostgreSQL", 0.0, "", "not run: no PostgreSQL server binaries", None, "")]
    with tempfile.TemporaryDirectory() as tmp, throwaway_cluster() as url:
        path = Path(tmp) / "archive.sqlite3"
        saving = 5_000
        lite_rate = saving / asyncio.run(_fill(Path(tmp) / "rate.sqlite3", saving))
        pg_rate = saving / asyncio.run(_fill(url, saving))
        empty_database(url, schema=True)
        asyncio.run(_fill(path, count))
        with open_side(str(path), "sqlite", create=False) as source, open_side(url, "postgresql", create=True) as dest:
            begin = time.perf_counter()
            copied = copy_tables(source, dest, batch=2_000)
            copying = time.perf_counter() - begin
            begin = time.perf_counter()
            assert all(check.same for check in check_tables(source, dest))
            checking = time.perf_counter() - begin
            rows = sum(copied.values())
            words = [random.Random(seed).choice(WORDS_RU + WORDS_EN) for seed in range(queries)]
            pg = []
            for word in words:
                begin = time.perf_counter()
                dest.conn.execute(PG_SEARCH, (word,)).fetchall()
                pg.append((time.perf_counter() - begin) * 1000)
        lite = asyncio.run(_sqlite_search(path, words))
    pg_p95, lite_p95 = sorted(pg)[int(len(pg) * 0.95)], sorted(lite)[int(len(lite) * 0.95)]
    return [
        Row(f"save rate, {saving:,} posts in batches of 100, PostgreSQL (loopback)", pg_rate, "posts/s", "SQLite",
            lite_rate, "each statement a round trip; echo indexing reads 16 bands a post"),
        Row(f"copy-archive SQLite -> PostgreSQL, {count:,} posts", rows / copying, "rows/s", "", None,
            f"{rows:,} rows in {copying:.1f} s; the check of every table on both sides {checking:.1f} s"),
        Row(f"search p95 over {count:,} posts, PostgreSQL (GIN, archive_words)", pg_p95, "ms",
            "SQLite FTS5, legation search", lite_p95, f"p50 {statistics.median(pg):.1f} ms vs "
            f"{statistics.median(lite):.1f} ms; one word, newest 20"),
    ]


async def _fill(path: Path | str, count: int) -> float:
    """``count`` posts saved as a backfill saves them; the seconds it took."""
    async with open_archive(path) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
        begin = time.perf_counter()
        for start in range(0, count, 100):
            async with transaction(conn):
                await save_posts(conn, channel_id, make_posts(min(100, count - start), seed=start,
                                                              first_id=start + 1), "2024-06-01T00:00:00Z")
        return time.perf_counter() - begin


async def _sqlite_search(path: Path, words: list[str]) -> list[float]:
    samples = []
    async with open_archive(path) as conn:
        for word in words:
            query = build_query(word)
            begin = time.perf_counter()
            await search_posts(conn, query.exact, wider=query.wider, limit=20)
            samples.append((time.perf_counter() - begin) * 1000)
    return samples
