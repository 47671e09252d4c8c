"""Media of the web preview kept as files: content-addressed, downloaded right after their
page is saved, from a loopback CDN that serves photos, thumbnails, videos and faults."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import chromium, connect_archive, rendered_dom, rows, start_browse

from monitor.capture.media import image_size
from monitor.config.settings import load_config
from monitor.daemon.service import archive_channels

ROOT = Path(__file__).resolve().parents[1]
CDN = "cdn4.telesco.pe"
MEDIA = '\n[media]\ndownload = ["photos", "thumbnails", "videos"]\nmax_size = 4000\n'


def jpeg(width: int, height: int, filler: bytes = b"") -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + filler + b"\xff\xd9"


PHOTO = jpeg(640, 480, b"one")
OTHER = jpeg(320, 200, b"two")
THUMB = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 90, 160) + b"\x08\x02\x00\x00\x00"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 500


def photo(path: str, album_post: int | None = None) -> str:
    single = f' href="https://t.me/MFARussia/{album_post}?single"' if album_post else ""
    return (f'<a class="tgme_widget_message_photo_wrap{" grouped_media_wrap" if album_post else ""}"{single} '
            f"style=\"width:100px;background-image:url('https://{CDN}/file/{path}')\"></a>")


def video(thumb: str, src: str) -> str:
    return (f'<a class="tgme_widget_message_video_player"><i class="tgme_widget_message_video_thumb" '
            f"style=\"background-image:url('https://{CDN}/file/{thumb}')\"></i>"
            f'<div class="tgme_widget_message_video_wrap"><video src="https://{CDN}/file/{src}?token=abc" '
            f'class="tgme_widget_message_video"></video></div><time class="message_video_duration">0:07</time></a>')


def cdn(tme) -> None:
    site = tme.site(CDN)
    site.page("/file/photo1.jpg", PHOTO, content_type="image/jpeg")
    site.page("/file/photo2.jpg", PHOTO, content_type="image/jpeg")  # the same picture again
    site.page("/file/other.jpg", OTHER, content_type="image/jpeg")
    site.page("/file/thumb.png", THUMB, content_type="image/png")
    site.page("/file/video.mp4?token=abc", VIDEO, content_type="video/mp4")
    site.page("/file/huge.jpg", jpeg(10, 10, b"x" * 10_000), content_type="image/jpeg")
    site.page("/file/moved.jpg", b"", status=302, Location="http://169.254.169.254/latest/meta-data")


def channel_with_media(tme):
    cdn(tme)
    channel = tme.channel("MFARussia")
    channel.add(1, text="Photo" + photo("photo1.jpg"))
    channel.add(2, text="Album" + photo("other.jpg", 2) + photo("photo2.jpg", 3))
    channel.add(4, text="Video" + video("thumb.png", "video.mp4"))
    channel.add(5, text="Gone" + photo("missing.jpg"))
    channel.add(6, text="Huge" + photo("huge.jpg"))
    channel.add(7, text="Moved" + photo("moved.jpg"))
    return channel


def media_rows(database: Path) -> dict[tuple[int, int, str], tuple[str, str | None]]:
    found = rows(database, "SELECT post_id, item, role, status, sha256 FROM post_media")
    return {(post, item, role): (status, sha) for post, item, role, status, sha in found}


async def test_photos_thumbnails_and_videos_are_stored_once_by_their_hash(tme, make_config):
    channel_with_media(tme)
    config = make_config("MFARussia", extra=MEDIA)

    await archive_channels(config, ["MFARussia"], mode="backfill")

    media = media_rows(config.database)
    sha = {name: __import__("hashlib").sha256(data).hexdigest() for name, data in
           (("photo", PHOTO), ("other", OTHER), ("thumb", THUMB), ("video", VIDEO))}
    assert media[(1, 0, "photo")] == ("ok", sha["photo"])
    assert media[(2, 0, "photo")] == ("ok", sha["other"]) and media[(2, 1, "photo")] == ("ok", sha["photo"])
    assert media[(4, 0, "thumbnail")] == ("ok", sha["thumb"]) and media[(4, 0, "video")] == ("ok", sha["video"])
    assert media[(5, 0, "photo")][0] == "failed"
    assert media[(6, 0, "photo")][0] == "skipped"
    assert media[(7, 0, "photo")][0] == "failed"
    files = rows(config.database, "SELECT sha256, size, mime, width, height, path FROM media_files ORDER BY size")
    assert len(files) == 4  # the photo shown twice is one file
    directory = config.media_dir
    for digest, size, _, _, _, path in files:
        stored = (directory / path).read_bytes()
        assert len(stored) == size and __import__("hashlib").sha256(stored).hexdigest() == digest
        assert path == f"{digest[:2]}/{digest}{Path(path).suffix}"
    by_hash = {f[0]: f for f in files}
    assert by_hash[sha["photo"]][2:5] == ("image/jpeg", 640, 480)
    assert by_hash[sha["thumb"]][2:5] == ("image/png", 90, 160)
    assert list(directory.glob("*/.part-*")) == []
    [(error,)] = rows(config.database, "SELECT error FROM post_media WHERE post_id = 7")
    assert "redirect to another host (169.254.169.254) refused" in error
    assert not [r for r in tme.requests if "169.254" in r]  # the redirect was never followed
    [(error, retry)] = rows(config.database, "SELECT error, next_attempt_at FROM post_media WHERE post_id = 5")
    assert error.startswith("HTTP 404") and retry is not None  # retried while the link is fresh
    # the posts themselves never waited for their files
    assert rows(config.database, "SELECT count(*) FROM posts") == [(6,)]


async def test_a_failed_file_is_retried_with_the_link_of_a_fresh_page_and_expires(tme, make_config):
    channel = channel_with_media(tme)
    config = make_config("MFARussia", extra=MEDIA)
    await archive_channels(config, ["MFARussia"], mode="backfill")

    channel.add(5, text="Gone" + photo("photo1.jpg"))  # the preview now shows a fresh link
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert media_rows(config.database)[(5, 0, "photo")][0] == "ok"

    with connect_archive(config.database) as conn:  # a link last seen two days ago, never saved
        conn.execute("UPDATE post_media SET status = 'pending', seen_at = '2000-01-01T00:00:00Z' WHERE post_id = 7")
    channel.delete(7)  # no page shows post 7 again: its link is never refreshed
    await archive_channels(config, ["MFARussia"], mode="sync")
    [(status, error)] = rows(config.database, "SELECT status, error FROM post_media WHERE post_id = 7")
    assert status == "expired" and "expired" in error


async def test_no_media_are_kept_when_download_is_empty(tme, make_config):
    channel_with_media(tme)
    config = make_config("MFARussia", extra='\n[media]\ndownload = []\n')
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert rows(config.database, "SELECT count(*) FROM post_media") == [(0,)]
    assert not tme.site_requests(CDN)


def test_image_sizes_from_headers():
    assert image_size(PHOTO) == (640, 480) and image_size(THUMB) == (90, 160)
    assert image_size(b"GIF89a" + struct.pack("<HH", 3, 4)) == (3, 4)
    assert image_size(VIDEO) == (None, None) and image_size(b"\xff\xd8\xff") == (None, None)


def test_kill_9_while_files_download_then_the_next_round_finishes_them(tme, write_config):
    channel_with_media(tme)
    config_path = write_config("MFARussia", extra=MEDIA)
    config = load_config(config_path)
    slow = {"/file/photo1.jpg"}

    def stall(method, path, headers, body):
        if path in slow:
            time.sleep(30)  # the download hangs: the process is killed meanwhile
        return None

    tme.site(CDN).dynamic = stall
    process = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config_path), "backfill"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while f"//{CDN}/file/photo1.jpg" not in tme.requests:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    slow.clear()
    saved = rows(config.database, "SELECT post_id FROM posts")
    assert saved  # the page was saved before its files were fetched
    directory = config.media_dir
    (directory / "ab").mkdir(parents=True, exist_ok=True)
    (directory / "ab" / ".part-x1y2").write_bytes(b"half a fi")  # what a kill during a write leaves

    import asyncio
    asyncio.run(archive_channels(config, ["MFARussia"], mode="backfill"))

    media = media_rows(config.database)
    assert media[(1, 0, "photo")][0] == "ok"
    assert list(directory.glob("*/.part-*")) == []  # no partial file under any name
    for (path,) in rows(config.database, "SELECT path FROM media_files"):
        assert (directory / path).is_file()  # no row without its file
    orphans = rows(config.database, "SELECT count(*) FROM post_media WHERE status = 'ok' AND sha256 NOT IN "
                                    "(SELECT sha256 FROM media_files)")
    assert orphans == [(0,)]



async def test_status_and_export_say_which_file_each_media_item_is(tme, make_config, tmp_path):
    import asyncio
    import json

    from click.testing import CliRunner

    from monitor.cli.main import cli

    channel_with_media(tme)
    config = make_config("MFARussia", extra=MEDIA)
    await archive_channels(config, ["MFARussia"], mode="backfill")

    def run(*args: str):
        return CliRunner().invoke(cli, ["-c", str(config.source), *args])

    status = await asyncio.to_thread(run, "status")
    print(status.output, status.exception)
    [line] = [line for line in status.stdout.splitlines() if line.startswith("media: ")]
    assert line.startswith("media: 4 file(s), 0.0 MB in ") and "items 2 failed, 1 skipped" in line
    data = json.loads((await asyncio.to_thread(run, "status", "--json")).stdout)
    assert data["media"]["ok"] == 5 and data["media"]["files"] == 4
    target = tmp_path / "posts.jsonl"
    await asyncio.to_thread(run, "export", "--with-media", "-o", str(target))
    posts = {p["post_id"]: p for p in map(json.loads, target.read_text().splitlines())}
    [item] = posts[1]["media_files"]
    assert item["role"] == "photo" and item["status"] == "ok" and item["path"].endswith(".jpg")
    assert (config.media_dir / item["path"]).is_file()
    assert posts[6]["media_files"][0]["status"] == "skipped"


@pytest.mark.sqlite_only("it reads the feed in Datasette, which reads SQLite files")
async def test_browse_shows_pictures_in_the_feed_and_on_the_post_page(tme, make_config):
    import importlib.util

    import httpx
    import pytest

    browser = chromium()
    if browser is None or importlib.util.find_spec("datasette") is None:
        pytest.skip("needs chromium and datasette (.ci/run installs both)")
    channel_with_media(tme)
    config = make_config("MFARussia", extra=MEDIA)
    await archive_channels(config, ["MFARussia"], mode="backfill")
    [(path,)] = rows(config.database, "SELECT picture FROM post_feed WHERE post_id = 1")
    server, base, _ = start_browse(config.source)
    try:
        assert httpx.get(f"{base}/media/{path}").content == PHOTO  # the file, served read-only
        database = config.database.stem

        feed = rendered_dom(browser, f"{base}/sql/{database}/post_feed?post_id=1")
        assert f'<img src="/media/{path}"' in feed and "max-width:96px" in feed
        post = rendered_dom(browser, f"{base}/sql/{database}/post?channel=MFARussia&post_id=1")
        assert f'<img src="/media/{path}"' in post and "max-width:100%" in post
        room = rendered_dom(browser, f"{base}/MFARussia/1")  # the reading room's page of the post
        assert f'<a href="/media/{path}"><img src="/media/{path}"' in room
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_a_local_file_is_taken_only_from_the_accounts_download_directory(tme, make_config, tmp_path):
    from monitor.capture.media import MediaStore
    from monitor.net.client import HttpClient
    from storage.db import open_archive

    channel_with_media(tme)
    config = make_config("MFARussia", extra=MEDIA)
    await archive_channels(config, ["MFARussia"], mode="backfill")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the archive")
    incoming = tmp_path / "media" / ".incoming"
    incoming.mkdir(parents=True)
    with connect_archive(config.database) as conn:  # as if a source had named it
        conn.execute("UPDATE post_media SET url = ?, status = 'pending' WHERE post_id = 1", (secret.as_uri(),))

    async with open_archive(config.database) as conn, HttpClient(config.network) as http:
        await MediaStore(http, config.media, tmp_path / "store", incoming).capture(conn)

    [(status, error)] = rows(config.database, "SELECT status, error FROM post_media WHERE post_id = 1")
    assert status == "failed" and "outside the account's download directory" in error
    assert secret.exists() and not (tmp_path / "store").exists()


async def test_a_backfill_saving_several_pages_at_once_downloads_every_file_of_them(tme, make_config):
    """A backfill saves five pages a transaction: the files of all five are fetched before it goes on
    (their links expire), not one page's worth."""
    site = tme.site(CDN)
    channel = tme.channel("MFARussia")
    for post_id in range(1, 201):
        site.page(f"/file/{post_id}.jpg", jpeg(10, 10, post_id.to_bytes(2, "big")), content_type="image/jpeg")
        channel.add(post_id, text=f"Photo {post_id}" + photo(f"{post_id}.jpg"))
    config = make_config("MFARussia", extra=MEDIA)

    await archive_channels(config, ["MFARussia"], mode="backfill")

    assert rows(config.database, "SELECT status, count(*) FROM post_media GROUP BY status") == [("ok", 200)]


async def test_a_failing_cdn_does_not_hold_the_backfill(tme, make_config):
    """Every file answers 502, and the network retries with real waits: the posts go on at the
    speed of their pages; the files are recorded failed, due again later, and a page's worth
    of failures in a row leaves the host's other files for a later round."""
    tme.site(CDN).dynamic = lambda method, path, headers, body: (502, {"Content-Type": "text/plain"}, b"bad gateway")
    channel = tme.channel("MFARussia")
    for post_id in range(1, 101):
        channel.add(post_id, text=f"Photo {post_id}" + photo(f"p{post_id}.jpg"))
    slow_retries = ('\n[network]\nrequest_delay = "0s"\nretry_backoff = "2s"\nmax_retry_wait = "30s"\n'
                    'timeout = "5s"\nmax_retries = 3\n')
    config = make_config("MFARussia", extra=MEDIA.replace('download = ["photos", "thumbnails", "videos"]',
                                                          'download = ["photos"]'), network=slow_retries)
    started = time.monotonic()

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="backfill")).channels

    assert outcome.error is None and outcome.saved.new == 100
    assert time.monotonic() - started < 20
    files = [r for r in tme.requests if r.startswith(f"//{CDN}/")]
    assert 0 < len(files) <= 3 * 5 + 3  # three in a row per transaction of pages, then the rest wait
    failed = rows(config.database, "SELECT count(*) FROM post_media WHERE status = 'failed' "
                                   "AND next_attempt_at IS NOT NULL AND error = 'HTTP 502'")
    assert failed == [(len(files),)]
    assert rows(config.database, "SELECT count(*) FROM post_media WHERE status = 'pending'") == [(100 - len(files),)]


async def test_a_cdn_that_hangs_costs_three_timeouts_not_one_a_file(tme, make_config):
    """Every file hangs past the timeout: after three in a row the host's files wait (untouched,
    still due) and the backfill goes on through all its transactions at the speed of its pages."""
    def hang(method, path, headers, body):
        time.sleep(3.0)
        return 502, {"Content-Type": "text/plain"}, b"late"

    tme.site(CDN).dynamic = hang
    channel = tme.channel("MFARussia")
    for post_id in range(1, 301):  # three backfill transactions of five pages
        channel.add(post_id, text=f"Photo {post_id}" + photo(f"p{post_id}.jpg"))
    network = '\n[network]\nrequest_delay = "0s"\nretry_backoff = "10ms"\nmax_retry_wait = "1s"\ntimeout = "1s"\n'
    config = make_config("MFARussia", extra=MEDIA.replace('download = ["photos", "thumbnails", "videos"]',
                                                          'download = ["photos"]'), network=network)
    started = time.monotonic()

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="backfill")).channels

    assert outcome.saved.new == 300
    assert len([r for r in tme.requests if r.startswith(f"//{CDN}/")]) == 3
    assert time.monotonic() - started < 12  # three one-second timeouts, not nine
    assert rows(config.database, "SELECT count(*) FROM post_media WHERE status = 'pending'") == [(297,)]
