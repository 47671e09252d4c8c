"""The evidence chain: a capture round chains what it saved; `legation verify` passes, then
each tampering with the archive makes it fail, naming what broke."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from click.testing import CliRunner
from test_pages import CURRENT, fixture

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels


@pytest.fixture
async def captured(tme, make_config):
    """MFARussia: post 1 linking a release page, post 2 edited, post 3 deleted."""
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    channel = tme.channel("MFARussia")
    channel.add(1, text=f'Заявление <a href="{CURRENT}">здесь</a>')
    channel.add(2, text="Первая редакция")
    channel.add(3, text="Будет удалено")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    channel.add(2, text="Вторая редакция", edited=True)
    channel.delete(3)
    await archive_channels(config, ["MFARussia"], mode="recheck")
    return config


def verify(config) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config.source), "verify"], catch_exceptions=False)
    return result.exit_code, result.output


async def test_a_capture_is_chained_and_verifies(captured):
    code, output = await asyncio.to_thread(verify, captured)
    assert code == 0, output
    with sqlite3.connect(captured.database) as conn:
        kinds = [row[0] for row in conn.execute("SELECT kind FROM evidence_chain ORDER BY seq")]
    assert kinds[0] == "genesis"
    assert sorted(kinds[1:]) == ["deletion", "page", "post", "post", "post", "post"]  # post 2 twice
    assert "intact" in output


@pytest.mark.parametrize(("tamper", "named"), [
    ("UPDATE posts SET text = 'Подделка' WHERE post_id = 1", "post 1/1 version 1 was changed"),
    ("DELETE FROM post_history WHERE post_id = 2", "post 1/2 version 1 was captured"),
    ("UPDATE post_events SET at = '2020-01-01T00:00:00Z' WHERE kind = 'deleted'", "the deletion of post 1/3"),
    ("UPDATE page_versions SET text = text || ' (исправлено)'", "page https://mid.ru/ru/foreign_policy/news/1944000/ "
                                                                 "version 1 was changed"),
    ("INSERT INTO post_history (channel_id, post_id, version, text, seen_at, content_hash, edited) "
     "SELECT channel_id, post_id, 0, 'вставка', version_seen_at, 'x', 0 FROM posts WHERE post_id = 1",
     "post 1/1 version 0 is in the archive but not in the chain"),
])
async def test_each_tampering_fails_verify_naming_what_broke(captured, tamper, named):
    with sqlite3.connect(captured.database) as conn:
        conn.execute(tamper)
    code, output = await asyncio.to_thread(verify, captured)
    assert code == 1 and named in output, output


async def test_the_chain_itself_is_append_only_and_reordering_it_is_found(captured):
    with sqlite3.connect(captured.database) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM evidence_chain WHERE seq = 2")
        conn.execute("DROP TRIGGER evidence_chain_no_update")  # as someone who means it would
        conn.execute("UPDATE evidence_chain SET seq = -seq WHERE seq IN (2, 3)")
        conn.execute("UPDATE evidence_chain SET seq = 3 WHERE seq = -2")
        conn.execute("UPDATE evidence_chain SET seq = 2 WHERE seq = -3")
    code, output = await asyncio.to_thread(verify, captured)
    assert code == 1 and "chain record 2 does not follow the record before it" in output, output


async def test_a_media_file_changed_on_disk_fails_verify(tme, make_config):
    from test_media import MEDIA, cdn, photo

    cdn(tme)
    tme.channel("MFARussia").add(1, text="Photo" + photo("photo1.jpg"))
    config = make_config("MFARussia", extra=MEDIA)
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert (await asyncio.to_thread(verify, config))[0] == 0
    with sqlite3.connect(config.database) as conn:
        [(path,)] = conn.execute("SELECT path FROM media_files").fetchall()
        assert conn.execute("SELECT count(*) FROM evidence_chain WHERE kind = 'media'").fetchone() == (1,)
    (config.media_dir / path).write_bytes(b"\xff\xd8 another picture \xff\xd9")
    code, output = await asyncio.to_thread(verify, config)
    assert code == 1 and f"media file {path} was changed after it was captured" in output, output
