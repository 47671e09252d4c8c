"""Workers sharing one PostgreSQL archive: 300 channels on the loopback t.me with a politeness delay
per host in each worker (as each machine keeps its own), archived by one worker and by three; one
SQLite worker beside them in the same run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, FakeTelegram, Row

CHANNELS = 300
POSTS = 20
DELAY = "50ms"  # between two requests to one host, in each worker


def _config(tmp: Path, tme: FakeTelegram, database: str, n: int) -> Path:
    path = tmp / f"worker{n}.toml"
    path.write_text(
        f'database = "{database}"\n[telegram]\nweb_url = "{tme.url}"\n[network]\nrequest_delay = "{DELAY}"\n'
        'allow_private_addresses = true\n[pages]\nfollow = []\n[sync]\nrecheck_posts = 0\n[log]\nlevel = "warning"\n'
        f'[media]\ndownload = []\ndir = "{tmp / "media"}"\n'
        '[schedule]\npoll_interval = "1h"\nrecheck_interval = "1d"\nlease_ttl = "4s"\n'
        + "".join(f'[[channels]]\nname = "ch{c:03d}"\n' for c in range(CHANNELS)), encoding="utf-8")
    return path


def _archived(database: str) -> int:
    from helpers import read_only

    found = read_only(database, "SELECT count(*) FROM posts")
    return found[0][0] if found else 0


def _time(tmp: Path, tme: FakeTelegram, database: str, workers: int) -> float:
    configs = [_config(tmp, tme, database, n) for n in range(workers)]
    begin = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(c), "run"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in configs]
    try:
        while _archived(database) < CHANNELS * POSTS:
            if time.perf_counter() - begin > 600:
                raise TimeoutError(f"{workers} worker(s) did not archive the channels in 10 minutes")
            time.sleep(0.2)
        return time.perf_counter() - begin
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def bench_workers() -> list[Row]:
    from pgserver import empty_database, server_binaries, throwaway_cluster

    if server_binaries() is None:
        return [Row("workers", 0.0, "", "not run: no PostgreSQL server binaries", None, "")]
    tme = FakeTelegram().start()
    try:
        for c in range(CHANNELS):
            channel = tme.channel(f"ch{c:03d}")
            for post_id in range(1, POSTS + 1):
                channel.add(post_id)
        with tempfile.TemporaryDirectory() as tmp, throwaway_cluster() as url:
            lite = _time(Path(tmp), tme, str(Path(tmp) / "archive.sqlite3"), 1)
            empty_database(url, schema=True)
            one = _time(Path(tmp), tme, url, 1)
            empty_database(url, schema=True)
            three = _time(Path(tmp), tme, url, 3)
    finally:
        tme.stop()
    return [
        Row(f"{CHANNELS} channels, {DELAY} between requests a worker: 1 worker, PostgreSQL", one, "s",
            "SQLite, 1 worker", lite, f"{CHANNELS * POSTS:,} posts archived"),
        Row(f"{CHANNELS} channels, {DELAY} between requests a worker: 3 workers, PostgreSQL", three, "s",
            "1 worker, PostgreSQL", one, f"{one / three:.1f}x the throughput of one worker"),
    ]
