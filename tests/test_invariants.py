"""Invariants that a deliberately broken copy of the code once slipped past: each test here
names the one it guards and fails when that guard is removed."""

from __future__ import annotations

import sqlite3

import pytest
from helpers import connect_archive, rows
from tmeserver import FIXTURES

from monitor.daemon.service import archive_channels
from monitor.errors import UnsafeURL
from monitor.net.guard import AddressGuard


async def archived_channel(tme, make_config, count: int = 30, **channel_args):
    channel = tme.channel("ministry", **channel_args)
    for post_id in range(1, count + 1):
        channel.add(post_id)
    config = make_config("ministry")
    await archive_channels(config, ["ministry"], mode="backfill")
    return channel, config


async def test_an_inconclusive_single_post_page_deletes_nothing(tme, make_config):
    channel, config = await archived_channel(tme, make_config)
    channel.delete(25)  # gone from the channel page ...
    tme.override("/ministry/25?embed=1", "<html><body><p>Something else entirely</p></body></html>")  # ... unclear

    await archive_channels(config, ["ministry"], mode="sync")

    assert tme.embed_requests() == ["/ministry/25?embed=1"]
    assert rows(config.database, "SELECT deleted_at FROM posts WHERE post_id = 25") == [(None,)]
    assert rows(config.database, "SELECT post_id, last_error FROM deletion_candidates") == [
        (25, "inconclusive single-post page")]


async def test_a_name_that_resolves_inside_the_network_is_refused_before_any_request():
    async def intranet(host: str, port: int) -> list[str]:
        return ["10.0.0.5"]

    with pytest.raises(UnsafeURL, match="intranet.example resolves to 10.0.0.5, which is not a public address"):
        await AddressGuard(resolve=intranet).check_url("https://intranet.example/report")


async def test_403_is_a_wall_not_a_failure(tme, make_config):
    tme.site("mid.ru").page("/ru/1/", b"<html>Forbidden</html>", status=403)
    tme.channel("ministry").add(1, text='<a href="https://mid.ru/ru/1/">x</a>')
    config = make_config("ministry")

    await archive_channels(config, ["ministry"], mode="sync")

    [(status, error, retry_at)] = rows(config.database, "SELECT status, error, next_attempt_at FROM pages")
    assert (status, error) == ("blocked", "HTTP 403") and retry_at is not None


async def test_a_robots_txt_that_fails_is_retried_and_then_honoured(tme, make_config):
    site = tme.site("mid.ru")
    site.page("/robots.txt", b"oops", status=503)
    site.page("/ru/foreign_policy/news/1944000/", (FIXTURES / "sites" / "midru_current.html").read_bytes())
    tme.channel("ministry").add(1, text='<a href="https://mid.ru/ru/foreign_policy/news/1944000/">x</a>')
    config = make_config("ministry")

    await archive_channels(config, ["ministry"], mode="sync")
    [(status, error, retry_at)] = rows(config.database, "SELECT status, error, next_attempt_at FROM pages")
    assert status == "failed" and error.startswith("robots.txt unavailable") and retry_at is not None
    assert "/ru/foreign_policy/news/1944000/" not in tme.site_requests("mid.ru")

    site.page("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE pages SET next_attempt_at = '2000-01-01T00:00:00Z'")
    await archive_channels(config, ["ministry"], mode="sync")
    assert rows(config.database, "SELECT status FROM pages") == [("ok",)]


async def test_edited_once_stays_edited(tme, make_config):
    channel, config = await archived_channel(tme, make_config, count=3)
    channel.add(2, edited=True)  # the same content, marked edited: no new version ...
    await archive_channels(config, ["ministry"], mode="sync")
    channel.add(2, edited=False)  # ... and a later page without the mark takes nothing back
    await archive_channels(config, ["ministry"], mode="sync")

    assert rows(config.database, "SELECT edited, version FROM posts WHERE post_id = 2") == [(1, 1)]


# One walk moves through the history (monitor/capture/rounds.py:_walk); each page it saves commits
# together with the state it advances. A failure injected by SQLite itself between the two
# (a trigger that aborts the state update, or aborts one post of the page) must leave
# neither visible, and the next run must close the walk without a gap.
ABORT_STATE = """CREATE TRIGGER injected BEFORE UPDATE OF tail_id ON channels WHEN NEW.tail_id < 60
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END"""
ABORT_POST = """CREATE TRIGGER injected BEFORE INSERT ON posts WHEN NEW.post_id = 50
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END"""


@pytest.mark.parametrize("trigger", [ABORT_STATE, ABORT_POST], ids=["state fails", "a post fails"])
async def test_a_page_and_the_state_it_advances_commit_together(tme, make_config, trigger):
    channel = tme.channel("ministry")
    for post_id in range(1, 201):
        channel.add(post_id)
    config = make_config("ministry")
    await archive_channels(config, ["ministry"], mode="sync")  # creates the archive: head 200, tail 181
    with connect_archive(config.database) as conn:
        conn.execute(trigger)

    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        await archive_channels(config, ["ministry"], mode="backfill")

    # The backfill saves five pages a transaction: 81-180 committed with tail 81; the next
    # transaction (pages 1-80, and the tail they reach) failed whole: nothing of it is visible.
    assert rows(config.database, "SELECT tail_id, backfill_done_at FROM channels") == [(81, None)]
    assert rows(config.database, "SELECT min(post_id), count(*) FROM posts") == [(81, 120)]
    with connect_archive(config.database) as conn:
        conn.execute("DROP TRIGGER injected")
    await archive_channels(config, ["ministry"], mode="backfill")
    assert rows(config.database, "SELECT count(*), min(post_id), max(post_id) FROM posts") == [(200, 1, 200)]
    assert rows(config.database, "SELECT tail_id, backfill_done_at IS NOT NULL FROM channels") == [(1, 1)]
