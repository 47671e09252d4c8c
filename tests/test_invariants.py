"""Invariants that a deliberately broken copy of the code once slipped past: each test here
names the one it guards and fails when that guard is removed."""

from __future__ import annotations

import sqlite3

import pytest
from helpers import rows
from tmeserver import FIXTURES

from monitor.errors import UnsafeURL
from monitor.pages.guard import AddressGuard
from monitor.service import archive_channels


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
    with sqlite3.connect(config.database) as conn:
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


async def test_a_page_and_the_state_it_advances_commit_together(tme, make_config):
    channel = tme.channel("ministry")
    for post_id in range(1, 61):
        channel.add(post_id)
    config = make_config("ministry")
    await archive_channels(config, ["ministry"], mode="sync")  # the newest page: 41..60
    before = rows(config.database, "SELECT head_id, tail_id FROM channels")
    with sqlite3.connect(config.database) as conn:  # the write of post 25 fails inside its transaction
        conn.execute("CREATE TRIGGER fail_25 BEFORE INSERT ON posts WHEN new.post_id = 25 "
                     "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")

    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        await archive_channels(config, ["ministry"], mode="backfill")

    after = rows(config.database, "SELECT head_id, tail_id FROM channels")
    saved = [r[0] for r in rows(config.database, "SELECT post_id FROM posts ORDER BY post_id")]
    # the page of 21..40 failed whole: none of its posts, and a tail that did not move past it
    assert after == [(60, 41)] and before == [(60, 41)]
    assert saved == list(range(41, 61))
