"""The archive captured into PostgreSQL: the same capture, the same answers as on SQLite."""

from __future__ import annotations

import os

import pytest
from pgserver import server_binaries

from monitor.daemon.service import archive_channels

pytestmark = pytest.mark.skipif(server_binaries() is None and not os.environ.get("LEGATION_TEST_POSTGRES"),
                                reason="no PostgreSQL server binaries (apt install postgresql)")


async def test_a_capture_round_into_postgresql(tme, write_config, pg_url, tmp_path):
    from monitor.config.settings import load_config

    channel = tme.channel("MFARussia")
    for post_id in range(1, 6):
        channel.add(post_id, text=f"Заявление {post_id} о хартии")
    path = write_config("MFARussia")
    path.write_text(path.read_text(encoding="utf-8").replace(f'"{tmp_path / "archive.sqlite3"}"', f'"{pg_url}"'),
                    encoding="utf-8")
    config = load_config(path)
    assert config.on_postgres
    report = await archive_channels(config, ["MFARussia"], mode="backfill")
    print(report)
    import psycopg

    with psycopg.connect(pg_url) as conn:
        print(conn.execute("SELECT count(*) FROM posts").fetchone(), conn.execute("SELECT count(*) FROM evidence_chain").fetchone())
