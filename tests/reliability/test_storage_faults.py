"""Storage faults and secrets: a full disk or a held lock fails cleanly and resumes; no secret in any output."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.capture.rounds import sync_channel
from monitor.daemon.service import archive_channels
from monitor.net.client import HttpClient
from monitor.sources.webpreview import WebPreviewSource
from storage.db import open_archive, transaction
from storage.errors import WriteFailed

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.reliability


async def test_a_full_disk_rolls_back_and_the_next_run_resumes(tme, make_config):
    channel = tme.channel("filling")
    for post_id in range(1, 21):
        channel.add(post_id)
    config = make_config("filling")
    await archive_channels(config, ["filling"], mode="backfill")
    for post_id in range(21, 400):
        channel.add(post_id, text=f"Post {post_id} " + "долгий текст " * 60)

    async with open_archive(config.database) as conn, HttpClient(config.network) as http:
        pages = (await conn.execute_fetchall("PRAGMA page_count"))[0][0]
        await conn.execute(f"PRAGMA max_page_count = {pages + 3}")  # SQLite's own "disk full"
        with pytest.raises(WriteFailed, match="database or disk is full"):
            await sync_channel(conn, WebPreviewSource(http, config.telegram.web_url), "filling")

    with sqlite3.connect(config.database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        head, walk = db.execute("SELECT head_id, walk_cursor FROM channels").fetchone()
    assert head == 20  # the gap above it is a walk to resume, not a hole
    [outcome] = (await archive_channels(config, ["filling"], mode="sync")).channels
    assert outcome.error is None
    with sqlite3.connect(config.database) as db:
        assert db.execute("SELECT count(*), min(post_id), max(post_id) FROM posts").fetchone() == (399, 1, 399)


async def test_a_lock_held_by_another_writer_is_a_bounded_wait_and_a_clear_error(tmp_path):
    path = tmp_path / "locked.sqlite3"
    async with open_archive(path) as conn:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute("PRAGMA busy_timeout = 200")
            with pytest.raises(WriteFailed, match="database is locked"):
                async with transaction(conn):
                    pass
        finally:
            other.execute("ROLLBACK")
            other.close()
        async with transaction(conn):  # once released, writing works again
            await conn.execute("INSERT INTO channels (username, added_at) VALUES ('x', 'now')")


def test_secrets_never_reach_logs_or_status(tme, write_config):
    token = "123456789:AAE-SeCrEt-BoTtOkEn-0123456789"
    api_hash = "0123456789abcdef0123456789abcdef"
    tme.channel("MFARussia").add(1, text="The Eurasian charter", start=datetime.now(UTC))
    config = write_config("MFARussia", extra=f"""
[alerts]
notify = ["json://127.0.0.1:1/{token}"]
[[alerts.rules]]
name = "charter"
keywords = ["Eurasian charter"]
""")
    web_url = f'web_url = "{tme.url}"'
    config.write_text(config.read_text().replace(web_url, f'{web_url}\napi_id = 12345\napi_hash = "{api_hash}"'))

    outputs = []
    for args in (["--log-format", "json", "--log-level", "debug", "sync"], ["status", "--json"], ["status"],
                 ["alerts"]):
        done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        outputs.append(done.stdout + done.stderr)
    joined = "\n".join(outputs)
    assert "alert_delivery_failed" in joined  # the token's URL was used, and failed (port 1)
    assert token not in joined and api_hash not in joined and "SeCrEt" not in joined
