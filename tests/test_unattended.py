"""Conditions a daemon meets when nobody watches (issue 31): a handle taken over, an
out-of-range id, an empty ?before= answer; each on the loopback t.me, through the real round."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner
from helpers import rows
from tmeserver import FakeChannel

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels


def invoke(config, *args: str):
    return CliRunner().invoke(cli, ["-c", str(config), *args], catch_exceptions=False)


async def test_a_username_that_starts_serving_another_channel_is_kept_apart(tme, make_config, write_config):
    ministry = tme.channel("MFARussia", title="Old channel")
    for post_id in range(1, 11):
        ministry.add(post_id, text=f"Statement {post_id}", channel_id=1115334455)
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    impostor = tme.channel("MFARussia", title="IMPOSTOR")
    for post_id in range(1, 13):
        impostor.add(post_id, text=f"IMPOSTOR {post_id}", channel_id=999999)

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="sync")).channels

    assert outcome.error == ("MFARussia: now serves another channel (id 999999; archived: id 1115334455); nothing "
                             "of it is saved here. If the new channel is wanted, archive it in another database")
    assert rows(config.database, "SELECT count(*), sum(text LIKE 'IMPOSTOR%') FROM posts") == [(10, 0)]
    assert rows(config.database, "SELECT count(*) FROM post_history") == [(0,)]
    assert rows(config.database, "SELECT telegram_id, title FROM channels") == [(1115334455, "Old channel")]
    status = await asyncio.to_thread(invoke, config.source, "status")
    assert status.exit_code == 1 and "now serves another channel" in status.stdout
    recheck = await asyncio.to_thread(invoke, config.source, "recheck")
    assert recheck.exit_code == 1 and "now serves another channel" in recheck.stdout
    assert rows(config.database, "SELECT count(*) FROM post_history") == [(0,)]


async def test_an_out_of_range_id_once_on_the_newest_page_does_not_hide_later_posts(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 101):
        channel.add(post_id)
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    channel.add(100000, text="An id far out of range")
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert rows(config.database, "SELECT head_id FROM channels") == [(100000,)]
    channel.delete(100000)
    for post_id in range(101, 251):
        channel.add(post_id)

    for _ in range(2):
        await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT count(*) FROM posts WHERE post_id BETWEEN 101 AND 250") == [(150,)]
    assert rows(config.database, "SELECT head_id FROM channels") == [(250,)]


async def test_new_posts_fewer_than_a_page_move_the_newest_archived_id(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 31):
        channel.add(post_id)
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    for post_id in range(31, 36):
        channel.add(post_id)

    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT head_id, tail_id FROM channels") == [(35, 1)]


async def test_one_empty_answer_to_before_does_not_end_the_backfill(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 101):
        channel.add(post_id)
    empty = FakeChannel("MFARussia").render(None).encode()
    tme.once["/s/MFARussia?before=81"] = (200, {"Content-Type": "text/html; charset=utf-8"}, empty)
    config = make_config("MFARussia")

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="backfill")).channels

    assert outcome.saved.new == 100
    assert rows(config.database, "SELECT count(*), min(post_id) FROM posts") == [(100, 1)]
    assert tme.page_requests().count("/s/MFARussia?before=81") == 2


async def test_an_empty_answer_closing_a_sync_gap_is_read_again(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 21):
        channel.add(post_id)
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    for post_id in range(21, 81):
        channel.add(post_id)
    empty = FakeChannel("MFARussia").render(None).encode()
    tme.once["/s/MFARussia?before=61"] = (200, {"Content-Type": "text/html; charset=utf-8"}, empty)

    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT count(*) FROM posts") == [(80,)]
