"""Crash consistency: `backfill` and `run`, killed with SIGKILL at seeded random points, end exactly
as an uninterrupted run does: same posts, versions, links; no duplicates, no gaps, integrity ok."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import read_only
from tmeserver import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
POSTS = 400
KILLS = 20
SEED = 20261123

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def config_file(tmp_path: Path, tme: FakeTelegram, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'database = "{tmp_path / name}.sqlite3"\n[telegram]\nweb_url = "{tme.url}"\n'
        '[network]\nrequest_delay = "0s"\nretry_backoff = "10ms"\ntimeout = "5s"\nallow_private_addresses = true\n'
        '[pages]\nfollow = []\n[schedule]\npoll_interval = "1s"\n'
        '[log]\nlevel = "warning"\n[[channels]]\nname = "long_history"\n',
        encoding="utf-8",
    )
    return path


def start(config: Path, command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), command], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def complete(config: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), "backfill"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def count_posts(database: Path) -> int:
    return (read_only(database, "SELECT count(*) FROM posts") or [(0,)])[0][0]


def snapshot(database: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")
        return {
            "posts": conn.execute(
                "SELECT post_id, date, text, html, views, author, edited, media, link_preview, version,"
                " content_hash FROM posts ORDER BY post_id").fetchall(),
            "versions": conn.execute(
                "SELECT post_id, version, text, content_hash FROM post_versions ORDER BY post_id, version").fetchall(),
            "links": conn.execute("SELECT post_id, url, kind FROM links ORDER BY 1, 2, 3").fetchall(),
            "search": conn.execute("SELECT channel_id, post_id, text FROM post_search ORDER BY key").fetchall(),
            "channel": conn.execute(
                "SELECT username, head_id, tail_id, backfill_done_at IS NOT NULL, walk_cursor FROM channels").fetchall(),
        }


@pytest.fixture
def history(tme):
    channel = tme.channel("long_history")
    for post_id in range(1, POSTS + 1):
        if post_id % 11:
            channel.add(post_id, text=f"Post {post_id} about the Eurasian charter https://mid.ru/ru/{post_id}/")
    tme.delay = 0.02
    return channel


@pytest.mark.parametrize("command", ["backfill", "run"])
def test_killed_at_random_points_resumes_without_gaps_or_duplicates(tmp_path, tme, history, command):
    reference = config_file(tmp_path, tme, "reference")
    complete(reference)
    crashed = config_file(tmp_path, tme, "crashed")
    database = tmp_path / "crashed.sqlite3"
    rng = random.Random(f"{SEED}-{command}")
    thresholds = sorted(rng.sample(range(1, len(history.posts)), KILLS))
    kills = 0
    for threshold in thresholds:
        process = start(crashed, command)
        deadline = time.monotonic() + 60
        while count_posts(database) < threshold and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if process.poll() is None:
            time.sleep(rng.random() * 0.05)  # somewhere inside the next page's work
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
    if command == "run":
        finished = "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL"
        before = (read_only(database, finished) or [(0,)])[0][0]
        daemon = start(crashed, "run")
        deadline = time.monotonic() + 60
        # this daemon's own poll has finished, and the history is complete
        while ((read_only(database, finished) or [(0,)])[0][0] <= before
               or read_only(database, "SELECT backfill_done_at IS NOT NULL FROM channels") != [(1,)]):
            assert time.monotonic() < deadline and daemon.poll() is None
            time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    else:
        complete(crashed)

    assert kills >= KILLS - 2  # the last thresholds may be passed before a kill lands
    assert snapshot(database) == snapshot(tmp_path / "reference.sqlite3")
    assert len(snapshot(database)["posts"]) == len(history.posts)
