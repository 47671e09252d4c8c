"""Crash consistency: `legation backfill` killed with SIGKILL at random points resumes exactly."""

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
from tmeserver import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]
POSTS = 400
KILLS = 6
SEED = 20261123

pytestmark = pytest.mark.slow


def config_file(tmp_path: Path, tme: FakeTelegram, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'database = "{tmp_path / name}.sqlite3"\n[telegram]\nweb_url = "{tme.url}"\n'
        '[network]\nrequest_delay = "0s"\nretry_backoff = "10ms"\ntimeout = "5s"\n'
        '[log]\nlevel = "warning"\n[[channels]]\nname = "long_history"\n',
        encoding="utf-8",
    )
    return path


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "monitor", "-c", str(config), "backfill"]


def backfill(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command(config), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def complete(config: Path) -> None:
    done = subprocess.run(command(config), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def count_posts(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # schema not created yet


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
            "channel": conn.execute(
                "SELECT username, head_id, tail_id, backfill_done_at IS NOT NULL, walk_cursor FROM channels").fetchall(),
            "fts": conn.execute(
                "SELECT count(*) FROM posts_fts WHERE posts_fts MATCH 'eurasian'").fetchall(),
        }


def test_backfill_killed_at_random_points_resumes_without_gaps_or_duplicates(tmp_path, tme):
    channel = tme.channel("long_history")
    for post_id in range(1, POSTS + 1):
        if post_id % 11:
            channel.add(post_id, text=f"Post {post_id} about the Eurasian charter https://mid.ru/ru/{post_id}/")
    tme.delay = 0.03
    reference = config_file(tmp_path, tme, "reference")
    complete(reference)

    crashed = config_file(tmp_path, tme, "crashed")
    database = tmp_path / "crashed.sqlite3"
    rng = random.Random(SEED)
    thresholds = sorted(rng.sample(range(1, len(channel.posts)), KILLS))
    kills = 0
    for threshold in thresholds:
        process = backfill(crashed)
        while count_posts(database) < threshold and process.poll() is None:
            time.sleep(0.005)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
    complete(crashed)

    assert kills >= KILLS - 1  # the last threshold may be passed before the kill lands
    assert snapshot(database) == snapshot(tmp_path / "reference.sqlite3")
    assert len(snapshot(database)["posts"]) == len(channel.posts)
