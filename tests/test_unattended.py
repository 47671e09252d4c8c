"""Conditions a daemon meets when nobody watches (issue 31): a handle taken over, an
out-of-range id, an empty ?before= answer; each on the loopback t.me, through the real round."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner
from helpers import connect_archive, rows, wait_for
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


async def test_the_environments_proxy_carries_every_request_and_the_guard_still_holds(tme, tmp_path, monkeypatch):
    """No [network] proxy, only HTTPS_PROXY: t.me, release pages and media all go through it (no
    name here resolves: a request that went direct could not reach anything); a media link to
    a loopback address is still refused, and never reaches the proxy."""
    from monitor.config.settings import load_config

    tme.site("t.me").dynamic = lambda method, path, headers, body: tme.respond(path)[:3]
    channel = tme.channel("MFARussia")
    photo = "<a class=\"tgme_widget_message_photo_wrap\" style=\"background-image:url('{}')\"></a>"
    channel.add(1, text='Statement <a href="https://mid.ru/ru/1/" onclick="return confirm(1)">here</a>'
                        + photo.format("https://cdn4.telesco.pe/file/a.jpg"))
    channel.add(2, text="Inside" + photo.format("http://127.0.0.1:9/file/b.jpg"))
    tme.site("mid.ru").page("/ru/1/", "<html><head><title>Release</title></head><body><h1>Release</h1>"
                                      "<p>" + "Text of the release. " * 20 + "</p></body></html>")
    tme.site("cdn4.telesco.pe").page("/file/a.jpg", b"\xff\xd8 a photo \xff\xd9", content_type="image/jpeg")
    monkeypatch.setenv("HTTPS_PROXY", tme.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    path = tmp_path / "legation.toml"
    path.write_text(f'database = "{tmp_path / "archive.sqlite3"}"\n[telegram]\nweb_url = "https://t.me"\n'
                    f'[network]\nca_bundle = "{tme.write_ca(tmp_path / "ca.pem")}"\nrequest_delay = "0s"\n'
                    'retry_backoff = "10ms"\nmax_retries = 1\n[pages]\nfollow = ["mid.ru"]\nrequest_delay = "0s"\n'
                    '[media]\ndownload = ["photos"]\n[[channels]]\nname = "MFARussia"\n', encoding="utf-8")
    config = load_config(path)

    report = await archive_channels(config, ["MFARussia"], mode="backfill")

    assert report.channels[0].error is None and report.channels[0].saved.new == 2
    assert "//t.me/s/MFARussia" in tme.requests
    assert "//mid.ru/ru/1/" in tme.requests
    assert "//cdn4.telesco.pe/file/a.jpg" in tme.requests
    assert rows(config.database, "SELECT status FROM pages") == [("ok",)]
    assert rows(config.database, "SELECT post_id, status FROM post_media ORDER BY post_id") == [(1, "ok"), (2, "failed")]
    [(error,)] = rows(config.database, "SELECT error FROM post_media WHERE post_id = 2")
    assert "127.0.0.1 is not a public address" in error
    assert not any("127.0.0.1:9" in r for r in tme.requests)


# A page under the size cap that an extractor cannot take apart in bounded memory: 10 MB of
# one-word paragraphs (93 s and 2 GB inside the daemon before).
HUGE = ("<html><head><title>Huge</title></head><body>" + "<p>word " * 1_249_000 + "</body></html>").encode()


def huge_page(tme, write_config, extra: str = ""):
    tme.site("embassy.example").page("/huge/", HUGE)
    channel = tme.channel("MFARussia")
    channel.add(1, text='Release <a href="https://embassy.example/huge/" onclick="return confirm(1)">here</a>')
    return write_config("MFARussia", extra=extra)


def legation(config, *args: str, **kwargs):
    import subprocess
    import sys

    from helpers import ROOT
    return subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_page_that_cannot_be_extracted_in_bounds_fails_twice_then_for_good(tme, write_config):
    import time

    from helpers import read_only
    config = huge_page(tme, write_config)
    database = config.parent / "archive.sqlite3"
    for attempt in (1, 2):
        started = time.monotonic()
        sync = legation(config, "sync")
        sync.communicate(timeout=90)
        assert time.monotonic() - started < 45
        [(status, error, retry)] = read_only(database, "SELECT status, error, next_attempt_at FROM pages")
        assert status == "failed" and error == "extraction needed more than 600 MB of memory", error
        assert (retry is None) == (attempt == 2)  # tried again once, then failed for good
    requests = len(tme.site_requests("embassy.example"))
    legation(config, "sync").communicate(timeout=90)
    assert len(tme.site_requests("embassy.example")) == requests  # never fetched again in a loop


def test_a_process_killed_during_extraction_twice_leaves_the_page_failed_not_looping(tme, write_config):
    import signal

    from helpers import read_only
    config = huge_page(tme, write_config)
    database = config.parent / "archive.sqlite3"
    for starts in (1, 2):  # as an OOM killer would, while the page is being taken apart
        sync = legation(config, "sync")
        wait_for(lambda: read_only(database, f"SELECT 1 FROM pages WHERE extract_starts = {starts}"), 60)  # noqa: B023
        sync.send_signal(signal.SIGKILL)
        sync.communicate()
    legation(config, "sync").communicate(timeout=90)
    [(status, error)] = read_only(database, "SELECT status, error FROM pages")
    assert (status, error) == ("failed", "extraction did not finish 2 times (the process was stopped or killed "
                                         "during it)")


def test_sigterm_during_an_extraction_stops_the_daemon_within_the_units_timeout(tme, write_config):
    import signal
    import time

    from helpers import read_only
    config = huge_page(tme, write_config, extra='\n[schedule]\npages_interval = "1s"\n')
    database = config.parent / "archive.sqlite3"
    daemon = legation(config, "run")
    try:
        wait_for(lambda: read_only(database, "SELECT 1 FROM pages WHERE extract_starts > 0"), 60)
        time.sleep(0.5)
        with open(f"/proc/{daemon.pid}/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
        assert peak < 300 * 1024  # KB: the page is taken apart elsewhere
        stopped = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
        assert time.monotonic() - stopped < 10 and daemon.returncode == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()


async def test_a_retry_time_set_by_a_clock_that_ran_ahead_does_not_wait_for_it(tme, linking):

    tme.site("mid.ru").page("/ru/1/", "<html><head><title>Release</title></head><body><h1>Release</h1><p>"
                                      + "Text of the release. " * 20 + "</p></body></html>")
    _, config = linking("https://mid.ru/ru/1/")
    tme.site("mid.ru").page("/ru/1/", "down", status=503)
    await archive_channels(config, ["MFARussia"], mode="sync")
    with connect_archive(config.database) as db:  # the clock was a year ahead when that failure was recorded
        db.execute("UPDATE pages SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+365 days')")
    tme.site("mid.ru").page("/ru/1/", "<html><head><title>Release</title></head><body><h1>Release</h1><p>"
                                      + "Text of the release. " * 20 + "</p></body></html>")

    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT status FROM pages") == [("ok",)]
