"""Edits and deletions through two real sync runs against pages that changed in between."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from helpers import connect_archive, rows
from tmeserver import FakeChannel, swiftui_channel

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels
from monitor.read.history import word_diff


@pytest.fixture
def archived(tme, make_config):
    """A 60-post channel, fully backfilled; the pages can then be changed."""

    async def make(name: str = "ministry", posts: int = 60, extra: str = ""):
        channel = tme.channel(name)
        for post_id in range(1, posts + 1):
            channel.add(post_id)
        config = make_config(name, extra=extra)
        [outcome] = (await archive_channels(config, [name], mode="backfill")).channels
        assert outcome.error is None
        tme.requests.clear()
        return channel, config

    return make


async def test_an_edit_becomes_version_2_and_version_1_is_kept_exactly(archived):
    channel, config = await archived()
    [(original_html,)] = rows(config.database, "SELECT html FROM post_versions WHERE post_id = 55")
    channel.add(55, text="Post number 55 about the <b>Eurasian</b> security charter", edited=True)
    channel.add(56, views="7.7K")

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert (outcome.saved.changed, outcome.saved.new) == (1, 0)
    assert rows(config.database, "SELECT version, text, html, edited FROM post_versions WHERE post_id = 55 ORDER BY version") == [
        (1, "Post number 55 about the Eurasian charter", original_html, 0),
        (2, "Post number 55 about the Eurasian security charter",
         "Post number 55 about the <b>Eurasian</b> security charter", 1),
    ]
    assert rows(config.database, "SELECT count(*) FROM post_versions WHERE post_id = 56") == [(1,)]
    assert rows(config.database, "SELECT views FROM posts WHERE post_id = 56") == [(7700,)]


async def test_a_deleted_post_is_confirmed_then_marked_and_keeps_its_versions(archived):
    channel, config = await archived()
    channel.delete(50)

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.saved.deleted == 1
    [(deleted_at, text)] = rows(config.database, "SELECT deleted_at, text FROM posts WHERE post_id = 50")
    assert deleted_at is not None and text == "Post number 50 about the Eurasian charter"
    assert rows(config.database, "SELECT count(*) FROM post_versions WHERE post_id = 50") == [(1,)]
    assert rows(config.database, "SELECT kind FROM post_events WHERE post_id = 50") == [("deleted",)]
    assert rows(config.database, "SELECT count(*) FROM deletion_candidates") == [(0,)]
    assert tme_embeds(channel) == []  # nothing left to confirm


def tme_embeds(channel) -> list[int]:
    return sorted(channel.hidden)


async def test_a_missing_post_whose_page_still_shows_it_is_not_deleted(archived, tme):
    channel, config = await archived()
    channel.hide(45)

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.saved.deleted == 0
    assert tme.embed_requests() == ["/ministry/45?embed=1"]
    assert rows(config.database, "SELECT deleted_at FROM posts WHERE post_id = 45") == [(None,)]
    assert rows(config.database, "SELECT count(*) FROM deletion_candidates") == [(0,)]


async def test_the_newest_post_deleted_is_caught_too(archived):
    channel, config = await archived()
    channel.delete(60)

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.saved.deleted == 1
    assert rows(config.database, "SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [(60,)]


async def test_a_failed_confirmation_leaves_the_candidate_pending(archived, tme):
    channel, config = await archived()
    channel.delete(52)
    tme.outage = lambda path: path.endswith("?embed=1")

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.error is None and outcome.saved.deleted == 0
    assert rows(config.database, "SELECT deleted_at FROM posts WHERE post_id = 52") == [(None,)]
    [(attempts, error)] = rows(config.database, "SELECT attempts, last_error FROM deletion_candidates WHERE post_id = 52")
    assert attempts == 1 and "HTTP 503" in error

    tme.outage = None
    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels
    assert outcome.saved.deleted == 1
    assert rows(config.database, "SELECT count(*) FROM deletion_candidates") == [(0,)]


async def test_a_post_that_comes_back_is_restored_with_a_note(archived):
    channel, config = await archived()
    html = channel.posts[58]
    channel.delete(58)
    await archive_channels(config, ["ministry"], mode="sync")
    channel.posts[58] = html
    with connect_archive(config.database) as conn:  # the rounds are minutes apart, not in the same second
        conn.execute("UPDATE posts SET deleted_at = '2024-01-01T00:00:00Z' WHERE post_id = 58")

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.saved.restored == 1
    assert rows(config.database, "SELECT deleted_at FROM posts WHERE post_id = 58") == [(None,)]
    assert rows(config.database, "SELECT kind FROM post_events WHERE post_id = 58 ORDER BY id") == [
        ("deleted",), ("restored",)]


async def test_a_truncated_page_deletes_nothing(archived, tme):
    channel, config = await archived()
    page = channel.render(None).encode()
    tme.override("/s/ministry", page[: len(page) // 2])

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert "truncated page" in outcome.error
    assert rows(config.database, "SELECT count(*) FROM deletion_candidates") == [(0,)]
    assert rows(config.database, "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == [(0,)]


async def test_a_page_with_unparsable_posts_proves_no_deletion(archived):
    channel, config = await archived()
    channel.delete(57)
    channel.posts[59] = channel.posts[59].replace('data-post="ministry/59"', 'data-post="ministry/fifty-nine"')

    await archive_channels(config, ["ministry"], mode="sync")

    assert rows(config.database, "SELECT count(*) FROM deletion_candidates") == [(0,)]
    assert rows(config.database, "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == [(0,)]


async def test_a_page_missing_most_of_its_posts_is_not_a_mass_deletion(archived, tme):
    channel, config = await archived()
    garbled = FakeChannel("ministry", posts={i: channel.posts[i] for i in (41, 50, 60)})
    tme.override("/s/ministry", garbled.render(None))

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.error is None
    assert tme.embed_requests() == []
    assert rows(config.database, "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == [(0,)]


async def test_album_members_are_never_deletion_candidates(tme, make_config, shared):
    swiftui_channel(tme)
    config = make_config("swiftui_dev")
    await archive_channels(config, ["swiftui_dev"], mode="backfill")
    tme.requests.clear()

    [outcome] = (await archive_channels(config, ["swiftui_dev"], mode="sync")).channels

    assert outcome.saved.deleted == 0 and tme.embed_requests() == []
    assert rows(config.database, "SELECT count(*) FROM deletion_candidates") == [(0,)]


async def test_the_recheck_window_is_configurable(archived, tme):
    _, config = await archived(extra='\n[sync]\nrecheck_posts = 45\nrecheck_age = "3650d"\n')

    await archive_channels(config, ["ministry"], mode="sync")

    assert tme.page_requests() == ["/s/ministry", "/s/ministry?before=41", "/s/ministry?before=21"]


async def test_recheck_sweeps_old_posts_and_resumes(archived, tme):
    channel, config = await archived(extra='\n[sync]\nrecheck_posts = 0\n')
    channel.delete(3)
    channel.add(4, text="Post number 4, quietly rewritten", edited=True)
    tme.outage = lambda path: path.endswith("before=21")

    [failed] = (await archive_channels(config, ["ministry"], mode="recheck")).channels
    assert "503" in failed.error
    assert rows(config.database, "SELECT recheck_cursor FROM channels") == [(21,)]

    tme.outage = None
    tme.requests.clear()
    [outcome] = (await archive_channels(config, ["ministry"], mode="recheck")).channels

    assert tme.page_requests() == ["/s/ministry?before=21"]
    assert (outcome.saved.changed, outcome.saved.deleted) == (1, 1)
    assert rows(config.database, "SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [(3,)]
    assert rows(config.database, "SELECT recheck_cursor, recheck_done_at IS NOT NULL FROM channels") == [(None, 1)]


async def test_recheck_since_a_date_stops_there(archived, tme):
    _, config = await archived(extra='\n[sync]\nrecheck_posts = 0\n')

    await archive_channels(config, ["ministry"], mode="recheck", since="2020-01-02T01:00:00Z")  # post 25

    assert tme.page_requests() == ["/s/ministry?before=61", "/s/ministry?before=41"]


async def test_history_prints_versions_with_a_word_diff_and_the_deletion(archived, tme):
    channel, config = await archived()
    channel.add(54, text="Post number 54 about the Eurasian security charter", edited=True)
    await archive_channels(config, ["ministry"], mode="sync")
    channel.delete(54)
    await archive_channels(config, ["ministry"], mode="sync")

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "history", "ministry", "54"])

    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.splitlines()
    assert lines[0] == f"{tme.url}/ministry/54: 2 version(s)"
    assert lines[2] == "    Post number 54 about the Eurasian charter"
    assert lines[3].startswith("version 2  seen ") and lines[3].endswith("  edited")
    assert lines[4] == "    Post number 54 about the Eurasian {+security +}charter"
    assert lines[5].startswith("deleted ") and lines[5].endswith("single-post page says: Post not found")
    missing = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "history", "ministry", "999"])
    assert missing.exit_code == 1 and "no archived post 999 in channel ministry" in missing.stderr


def test_word_diff():
    assert word_diff("Лавров о Хартии", "Лавров о Евразийской хартии") == "Лавров о [-Хартии-]{+Евразийской хартии+}"
    assert word_diff("a b c", "a c") == "a [-b -]c"
    assert word_diff("same", "same") == "same"


async def test_a_newest_page_that_changed_only_its_counters_is_not_parsed_until_reparse_after(archived, tme):
    channel, config = await archived(extra='\n[sync]\nrecheck_posts = 0\n')
    for post_id in list(channel.posts):  # as t.me changes them on every load: views, the data-view token
        channel.add(post_id, views="5.5K")
        channel.posts[post_id] = channel.posts[post_id].replace('data-view="', 'data-view="t1')

    for _ in range(2):  # and again: what the page was compared with is kept
        [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels
        assert outcome.error is None and outcome.saved.unchanged == 0  # not parsed, not saved
        assert rows(config.database, "SELECT views FROM posts WHERE post_id = 60") == [(1200,)]
    assert tme.page_requests() == ["/s/ministry"] * 2

    channel.add(60, text="Post number 60, edited", views="5.5K", edited=True)  # a post changed: parsed
    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels
    assert outcome.saved.changed == 1 and outcome.saved.unchanged == 19
    assert rows(config.database, "SELECT views, version FROM posts WHERE post_id IN (59, 60) ORDER BY 1, 2") == [
        (5500, 1), (5500, 2)]


async def test_views_come_up_to_date_once_reparse_after_has_passed(archived):
    channel, config = await archived(extra='\n[sync]\nrecheck_posts = 0\nreparse_after = "0s"\n')
    for post_id in list(channel.posts):
        channel.add(post_id, views="5.5K")

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.saved.unchanged == 20
    assert rows(config.database, "SELECT views FROM posts WHERE post_id = 60") == [(5500,)]


async def test_exactly_five_real_deletions_on_a_page_are_deletions_not_a_garbled_page(archived):
    channel, config = await archived()
    for post_id in (42, 44, 46, 48, 50):  # five gone from the newest page of twenty: fifteen remain
        channel.delete(post_id)

    [outcome] = (await archive_channels(config, ["ministry"], mode="sync")).channels

    assert outcome.saved.deleted == 5
    assert rows(config.database, "SELECT post_id FROM posts WHERE deleted_at IS NOT NULL ORDER BY post_id") == [
        (42,), (44,), (46,), (48,), (50,)]


async def test_a_post_confirmed_deleted_does_not_become_a_candidate_again(archived):
    channel, config = await archived()
    channel.delete(55)
    await archive_channels(config, ["ministry"], mode="sync")
    for post_id in range(61, 64):  # the newest page changes
        channel.add(post_id)

    await archive_channels(config, ["ministry"], mode="sync")
    await archive_channels(config, ["ministry"], mode="sync")

    assert rows(config.database, "SELECT count(*) FROM deletion_candidates") == [(0,)]
    assert rows(config.database, "SELECT kind, count(*) FROM post_events WHERE post_id = 55 GROUP BY kind") == [
        ("deleted", 1)]
