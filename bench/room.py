"""The reading room over a large archive: timeline and post pages through `legation browse`,
beside Datasette's own table page for the same rows (served by the same process under /sql/)."""

from __future__ import annotations

import asyncio
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, Row
from micro import make_posts

from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.posts import save_posts

REQUESTS = 200  # of each kind


async def _fill(path: Path, count: int) -> None:
    async with open_archive(path) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
        for start in range(0, count, 5_000):
            async with transaction(conn):
                await save_posts(conn, channel_id, make_posts(min(5_000, count - start), seed=start,
                                                              first_id=start + 1), "2024-06-01T00:00:00Z")


def _p95(client: httpx.Client, urls: list[str]) -> tuple[float, float]:
    samples = []
    for url in urls:
        begin = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - begin) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def bench_room(count: int = 1_000_000) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "room.sqlite3"
        asyncio.run(_fill(database, count))
        config = Path(tmp) / "bench.toml"
        config.write_text(f'database = "{database}"\n[[channels]]\nname = "bench"\n', encoding="utf-8")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "browse", "--port", str(port)],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(base + "/-/room.css", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            rng = random.Random(3)
            ids = [rng.randint(31, count) for _ in range(REQUESTS)]
            with httpx.Client(base_url=base, timeout=30) as client:
                begin = time.perf_counter()
                client.get("/")  # the channels with their counts (then reused for a minute) and health
                home = (time.perf_counter() - begin) * 1000
                timeline = _p95(client, ["/bench"] * (REQUESTS // 4) + [f"/bench?before={i}" for i in ids[:150]])
                post = _p95(client, [f"/bench/{i}" for i in ids])
                # Datasette takes seconds a page here (it counts the rows and suggests facets): fewer samples
                datasette = _p95(client, ["/sql/room/posts?_sort_desc=post_id&_size=30"] * 5
                                 + [f"/sql/room/posts?_sort_desc=post_id&_size=30&post_id__lt={i}" for i in ids[:15]])
        finally:
            server.terminate()
            server.wait(timeout=60)
    verdict = "met" if max(timeline[1], post[1]) < 100 else "missed: p95 target < 100 ms"
    return [
        Row(f"reading room: a timeline page (30 posts) over {count:,} posts, p95", timeline[1], "ms",
            "Datasette's table page, same rows", datasette[1],
            f"{verdict}; p50 {timeline[0]:.1f} ms (Datasette {datasette[0]:.1f} ms); newest and deep pages"),
        Row(f"reading room: one post's page over {count:,} posts, p95", post[1], "ms", "target", 100.0,
            f"{verdict}; p50 {post[0]:.1f} ms; the channels page (counts and health, first load): {home:.0f} ms "
            "(the synthetic posts run into the future: 'posts in the last day' counts 680,000 of them)"),
    ]
