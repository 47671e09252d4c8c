"""backfill and sync through real HTTP over loopback, the real parser, and a real SQLite file."""

from __future__ import annotations

import json

import pytest
import structlog.testing
from helpers import rows
from tmeserver import swiftui_channel

from monitor.daemon.service import archive_channels
from monitor.sources.webpreview import parse_channel_page


async def test_backfill_walks_to_the_first_post_and_keeps_every_field(tme, make_config, shared):
    channel = swiftui_channel(tme)
    config = make_config("swiftui_dev")

    [outcome] = (await archive_channels(config, ["swiftui_dev"], mode="backfill")).channels

    assert outcome.error is None
    stored = [r[0] for r in rows(config.database, "SELECT post_id FROM posts ORDER BY post_id")]
    assert stored == sorted(channel.posts)
    assert outcome.saved.new == len(channel.posts)
    # every field of the captured posts survives the trip through HTTP and SQLite
    captured = parse_channel_page((shared / "channel-page-swiftui_dev-before-262.html").read_text(), "swiftui_dev")
    for post in captured.posts:
        [row] = rows(
            config.database,
            """SELECT date, text, html, views, author, edited, forwarded_from, reply_to, reply_to_url,
                      grouped_id, media, link_preview, service, version FROM posts WHERE post_id = ?""",
            post.post_id,
        )
        assert row == (
            post.date, post.text, post.html, post.views, post.author, int(post.edited),
            post.forwarded_from, post.reply_to, post.reply_to_url, post.grouped_id,
            json.dumps(list(post.media), ensure_ascii=False, sort_keys=True) if post.media else None,
            json.dumps(post.link_preview, ensure_ascii=False, sort_keys=True) if post.link_preview else None,
            0, 1,
        )
        links = rows(config.database, "SELECT url, kind FROM links WHERE post_id = ? ORDER BY url, kind", post.post_id)
        assert links == sorted((link.url, link.kind) for link in post.links)
    [(title, telegram_id, subscribers, done)] = rows(
        config.database, "SELECT title, telegram_id, subscribers, backfill_done_at IS NOT NULL FROM channels"
    )
    assert (title, telegram_id, done) == ("Alexander Kraev", 1492664793, 1)
    assert subscribers == len(channel.posts)
    # pages of 20 from the newest down, plus the page that shows nothing older is left
    pages = len(channel.posts) // 20 + 1
    assert len(tme.page_requests()) in (pages, pages + 1)


async def test_album_members_are_media_of_the_first_post_not_posts(tme, make_config, shared):
    swiftui_channel(tme)
    config = make_config("swiftui_dev")
    await archive_channels(config, ["swiftui_dev"], mode="backfill")

    assert rows(config.database, "SELECT count(*) FROM posts WHERE post_id BETWEEN 238 AND 243") == [(0,)]
    [(media,)] = rows(config.database, "SELECT media FROM posts WHERE post_id = 237")
    assert [item["post_id"] for item in json.loads(media)] == list(range(237, 244))


async def test_sync_after_backfill_is_one_request_when_nothing_is_new(tme, make_config):
    channel = tme.channel("quiet_channel")
    for post_id in range(1, 46):
        channel.add(post_id)
    config = make_config("quiet_channel")
    await archive_channels(config, ["quiet_channel"], mode="backfill")
    tme.requests.clear()

    [outcome] = (await archive_channels(config, ["quiet_channel"], mode="sync")).channels

    assert tme.page_requests() == ["/s/quiet_channel"]
    assert (outcome.saved.new, outcome.saved.changed) == (0, 0)


async def test_sync_fetches_every_new_post_across_pages(tme, make_config):
    channel = tme.channel("busy_channel")
    for post_id in range(1, 31):
        channel.add(post_id)
    config = make_config("busy_channel")
    await archive_channels(config, ["busy_channel"], mode="backfill")
    for post_id in range(31, 101):  # 70 new posts: more than three pages
        channel.add(post_id)
    tme.requests.clear()

    [outcome] = (await archive_channels(config, ["busy_channel"], mode="sync")).channels

    assert outcome.saved.new == 70
    assert rows(config.database, "SELECT count(*), min(post_id), max(post_id) FROM posts") == [(100, 1, 100)]
    assert tme.page_requests() == ["/s/busy_channel", "/s/busy_channel?before=81",
                                   "/s/busy_channel?before=61", "/s/busy_channel?before=41"]
    assert rows(config.database, "SELECT head_id, tail_id, walk_cursor FROM channels") == [(100, 1, None)]


async def test_an_interrupted_sync_walk_resumes_without_a_gap(tme, make_config):
    channel = tme.channel("gap_channel")
    for post_id in range(1, 21):
        channel.add(post_id)
    config = make_config("gap_channel")
    await archive_channels(config, ["gap_channel"], mode="backfill")
    for post_id in range(21, 81):
        channel.add(post_id)
    # the newest page arrives, then every page below it fails for good
    tme.outage = lambda path: "before=" in path
    [failed] = (await archive_channels(config, ["gap_channel"], mode="sync")).channels
    assert failed.error is not None and "503" in failed.error
    assert rows(config.database, "SELECT head_id, walk_target, walk_cursor FROM channels") == [(20, 80, 61)]

    tme.outage = None
    [outcome] = (await archive_channels(config, ["gap_channel"], mode="sync")).channels

    assert outcome.error is None
    assert [r[0] for r in rows(config.database, "SELECT post_id FROM posts ORDER BY post_id")] == list(range(1, 81))
    assert rows(config.database, "SELECT head_id, walk_target, walk_cursor, last_error FROM channels") == [
        (80, None, None, None)
    ]


async def test_429_with_retry_after_and_5xx_are_retried(tme, make_config):
    channel = tme.channel("flaky_channel")
    for post_id in range(1, 6):
        channel.add(post_id)
    tme.fail_next(429, headers={"Retry-After": "0"})
    tme.fail_next(502)
    tme.fail_next(503)
    config = make_config("flaky_channel")

    [outcome] = (await archive_channels(config, ["flaky_channel"], mode="backfill")).channels

    assert outcome.error is None
    assert rows(config.database, "SELECT count(*) FROM posts") == [(5,)]
    assert tme.page_requests()[:4] == ["/s/flaky_channel"] * 4


async def test_a_failing_channel_is_recorded_and_the_others_go_on(tme, make_config):
    good = tme.channel("good_channel")
    good.add(1)
    tme.fail_next(500, count=4)  # max_retries = 3: four failures exhaust the first channel
    config = make_config("down_channel", "good_channel")

    outcomes = (await archive_channels(config, ["down_channel", "good_channel"], mode="sync")).channels

    assert [(o.username, o.error is None) for o in outcomes] == [("down_channel", False), ("good_channel", True)]
    assert "HTTP 500 (after 4 attempts)" in outcomes[0].error
    assert rows(config.database, "SELECT username, last_error IS NOT NULL FROM channels ORDER BY username") == [
        ("down_channel", 1), ("good_channel", 0)
    ]


async def test_a_channel_without_public_preview_is_reported_clearly(tme, make_config):
    config = make_config("private_channel")

    [outcome] = (await archive_channels(config, ["private_channel"], mode="backfill")).channels

    assert outcome.error is not None
    assert "no public web preview" in outcome.error
    assert rows(config.database, "SELECT count(*) FROM posts") == [(0,)]


async def test_an_empty_channel_is_archived_with_nothing_to_do(tme, make_config):
    tme.channel("empty_channel", title="Nothing yet")
    config = make_config("empty_channel")

    [outcome] = (await archive_channels(config, ["empty_channel"], mode="backfill")).channels

    assert outcome.error is None
    assert rows(config.database, "SELECT title, head_id, backfill_done_at IS NOT NULL FROM channels") == [
        ("Nothing yet", None, 1)
    ]


@pytest.mark.parametrize("changed_text", ["Post number 3, corrected"])
async def test_sync_versions_a_post_whose_text_changed(tme, make_config, changed_text):
    channel = tme.channel("edit_channel")
    for post_id in range(1, 6):
        channel.add(post_id)
    config = make_config("edit_channel")
    await archive_channels(config, ["edit_channel"], mode="backfill")
    channel.add(3, text=changed_text, edited=True, views="2K")
    channel.add(4, views="9.9K")  # views alone are not content

    await archive_channels(config, ["edit_channel"], mode="sync")

    assert rows(config.database, "SELECT post_id, version, text, views, edited FROM posts WHERE post_id IN (3, 4)") == [
        (3, 2, changed_text, 2000, 1), (4, 1, "Post number 4 about the Eurasian charter", 9900, 0)
    ]
    assert rows(config.database, "SELECT version, text FROM post_versions WHERE post_id = 3 ORDER BY version") == [
        (1, "Post number 3 about the Eurasian charter"), (2, changed_text)
    ]


async def test_a_truncated_page_is_an_error_not_a_gap(tme, make_config):
    channel = tme.channel("cut_channel")
    for post_id in range(1, 61):
        channel.add(post_id)
    config = make_config("cut_channel")
    whole = channel.render(41).encode()
    cut = whole[: whole.index(b'data-post="cut_channel/35"')]  # posts 35..40 lost in transit
    tme.override("/s/cut_channel?before=41", cut)

    [failed] = (await archive_channels(config, ["cut_channel"], mode="backfill")).channels

    assert "truncated page" in failed.error
    assert rows(config.database, "SELECT tail_id FROM channels") == [(41,)]
    tme.overrides.clear()
    [outcome] = (await archive_channels(config, ["cut_channel"], mode="backfill")).channels
    assert outcome.error is None
    assert [r[0] for r in rows(config.database, "SELECT post_id FROM posts ORDER BY post_id")] == list(range(1, 61))


async def test_a_long_walk_says_where_it_is_page_by_page(tme, make_config):
    channel = tme.channel("ministry")
    for post_id in range(1, 261):
        channel.add(post_id)
    config = make_config("ministry")
    with structlog.testing.capture_logs() as events:
        await archive_channels(config, ["ministry"], mode="backfill")
        await archive_channels(config, ["ministry"], mode="recheck")

    backfill = [(e["read_down_to"], e["new"]) for e in events if e["event"] == "backfill_progress"]
    assert backfill == [(141, 100), (41, 200), (1, 240)]  # five pages a transaction; the sync had 241-260
    recheck = [(e["read_down_to"], e["until"]) for e in events if e["event"] == "recheck_progress"]
    assert recheck[0] == (241, 1) and recheck[-1][1] is None


async def test_pages_read_before_a_failure_are_kept_when_a_backfill_fails(tme, make_config):

    channel = tme.channel("ministry")
    for post_id in range(1, 201):
        channel.add(post_id)
    config = make_config("ministry", network='[network]\nrequest_delay = "0s"\nmax_retries = 0\n')
    await archive_channels(config, ["ministry"], mode="sync")  # 181-200
    original = tme.respond

    def third_page_fails(path: str):
        if "/s/ministry?before=" in path and sum("?before=" in r for r in tme.requests) == 2:
            tme.requests.append(path)
            return 503, {}, b"down", 0.0
        return original(path)

    tme.respond = third_page_fails  # type: ignore[method-assign]
    [outcome] = (await archive_channels(config, ["ministry"], mode="backfill")).channels

    assert outcome.error is not None  # the round failed at the third page of the transaction ...
    # ... and the two pages read before it are archived, with the tail they reach
    assert rows(config.database, "SELECT tail_id FROM channels") == [(141,)]
    assert rows(config.database, "SELECT min(post_id), count(*) FROM posts") == [(141, 60)]
