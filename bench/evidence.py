"""The evidence chain's cost: its share of saving posts as a backfill saves them, and its bytes a post."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from common import Row
from micro import make_posts

from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.evidence import append_records, post_content
from storage.posts import save_posts

BATCH = 100  # posts a transaction: a backfill saves five pages of 20 in one


class _RolledBack(Exception):
    pass


async def _measure(path: Path, count: int) -> tuple[float, float, int]:
    async with open_archive(path) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
        posts = make_posts(count)
        begin = time.process_time()
        for start in range(0, count, BATCH):
            async with transaction(conn):
                await save_posts(conn, channel_id, posts[start:start + BATCH], "2024-06-01T00:00:00Z")
        saving = time.process_time() - begin  # CPU of the whole save, the chain included
        records = [("post", f"{channel_id}/{p.post_id}/2", post_content(p.text, p.html, None, None, None, None))
                   for p in make_posts(count, seed=3, first_id=count + 1)]
        begin = time.process_time()
        try:
            async with transaction(conn):
                for start in range(0, count, BATCH):
                    await conn.run(append_records, records[start:start + BATCH], "2024-06-02T00:00:00Z")
                chaining = time.process_time() - begin
                raise _RolledBack
        except _RolledBack:
            pass
        size = (await conn.execute_fetchall("SELECT sum(pgsize) FROM dbstat WHERE name = 'evidence_chain'"))[0][0]
    return saving, chaining, size


def bench_evidence(count: int = 20_000) -> list[Row]:
    from system import bench_backfill

    with tempfile.TemporaryDirectory() as tmp:
        saving, chaining, size = asyncio.run(_measure(Path(tmp) / "evidence.sqlite3", count))
    [backfill] = bench_backfill((5_000,))  # posts per CPU-second of a whole backfill, the chain included
    per_post = chaining / count * 1e6
    share = per_post / (1e6 / backfill.value) * 100
    return [Row("evidence chain: its share of a backfill's CPU", share, "%", "target", 5.0,
                f"{'met' if share < 5 else 'missed'}; {per_post:.1f} us a record, of {1e6 / backfill.value:.0f} us "
                f"a post backfilled ({100 * chaining / saving:.0f}% of saving alone); {size / count:.0f} bytes a "
                "record")]
