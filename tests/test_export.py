"""The archive as a place to read: views, export round-trips, and Datasette in a real browser."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from helpers import chromium, connect_archive, rendered_dom, start_browse
from tmeserver import FIXTURES, message_wraps

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels
from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.models import Link, Post
from storage.posts import save_posts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def archive(tme, make_config):
    """Our MFA-style page with a release page, an edit and a deletion, archived for real."""
    channel = tme.channel("MFARussia")
    channel.posts.update(message_wraps((FIXTURES / "mfarussia_page.html").read_text(encoding="utf-8")))
    for post_id in range(1, 6):
        channel.add(post_id, text=f"Briefing {post_id}, «кавычки», comma, \"quotes\"\nsecond line")
    tme.site("mid.ru").page("/ru/foreign_policy/news/1984500/",
                            (FIXTURES / "sites" / "midru_current.html").read_text(encoding="utf-8"))
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    channel.add(3, text="Briefing 3, corrected", edited=True)
    channel.delete(4)
    await archive_channels(config, ["MFARussia"], mode="sync")
    return config


def run(config, *args: str):
    return asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), *args])


def query(config, sql: str) -> list[tuple]:
    with connect_archive(config.database) as conn:
        return conn.execute(sql).fetchall()


async def test_views(archive):
    assert query(archive, "SELECT channel, post_id, url, versions FROM post_feed WHERE post_id = 3") == [
        ("MFARussia", 3, "https://t.me/MFARussia/3", 2)]
    assert query(archive, "SELECT post_id, previous_text, text FROM edits") == [
        (3, "Briefing 3, «кавычки», comma, \"quotes\"\nsecond line", "Briefing 3, corrected")]
    assert query(archive, "SELECT post_id, url FROM deletions") == [(4, "https://t.me/MFARussia/4")]
    [(titles,)] = query(archive, "SELECT page_titles FROM post_feed WHERE post_id = 22958")
    assert titles == "Заявление МИД России в связи с годовщиной Евразийской хартии"


async def test_jsonl_round_trips_to_the_database_rows(archive, tmp_path):
    out = tmp_path / "posts.jsonl"
    result = await run(archive, "export", "-o", str(out), "--with-pages", "--with-versions")

    assert result.exit_code == 0 and result.stderr.strip() == "8 post(s) exported"
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rows = query(archive, "SELECT post_id, date, text, html, views, edited, deleted_at, version, media "
                          "FROM posts ORDER BY date, post_id")
    assert [(p["post_id"], p["date"], p["text"], p["html"], p["views"], int(p["edited"]), p["deleted_at"],
             p["versions"], json.dumps(p["media"], ensure_ascii=False, sort_keys=True) if p["media"] else None)
            for p in exported] == rows
    edited = next(p for p in exported if p["post_id"] == 3)
    assert [v["text"] for v in edited["version_history"]][-1] == "Briefing 3, corrected"
    linked = next(p for p in exported if p["post_id"] == 22958)
    assert {(page["url"], page["status"]) for page in linked["pages"]} >= {
        ("https://mid.ru/ru/foreign_policy/news/1984500/", "ok")}


async def test_csv_has_one_row_per_post_and_opens_in_spreadsheets(archive, tmp_path):
    out = tmp_path / "posts.csv"
    result = await run(archive, "export", "--format", "csv", "--bom", "-o", str(out), "--channel", "mfarussia",
                       "--since", "2020-01-01", "--until", "2024-01-01")

    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and result.exit_code == 0
    reader = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [r["post_id"] for r in reader] == ["1", "2", "3", "4", "5"]
    assert reader[0]["text"] == "Briefing 1, «кавычки», comma, \"quotes\"\nsecond line"
    assert reader[3]["deleted_at"] != "" and reader[2]["edited"] == "1"


async def test_export_filters_by_full_text_query(archive):
    result = await run(archive, "export", "--query", "Лаврова")
    # 22957 says it; 22958 links a release page that does
    assert [json.loads(line)["post_id"] for line in result.stdout.splitlines()] == [22957, 22958]


@pytest.mark.sqlite_only("saving 40,000 posts into PostgreSQL takes minutes here (a round trip per echo band); "
                         "the export's held cursor is what keeps its memory flat there")
async def test_export_memory_stays_flat_on_a_large_archive(tmp_path, make_config):
    config = make_config("big_channel")
    async with open_archive(config.database) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "big_channel", "2024-01-01T00:00:00Z")
        for start in range(0, 40_000, 2_000):
            batch = [Post(post_id=i, date=f"2024-01-01T00:00:{i % 60:02d}Z", text=f"post {i} " + "слово " * 40,
                          links=(Link(f"https://mid.ru/{i}", f"https://mid.ru/{i}", "text", "mid.ru"),))
                     for i in range(start + 1, start + 2_001)]
            async with transaction(conn):
                await save_posts(conn, channel_id, batch, "2024-06-01T00:00:00Z")

    def peak_mb(limit: int | None) -> float:
        args = ["export", "-o", str(tmp_path / "out.jsonl")] + (["--until", "2024-01-01T00:00:30Z"] if limit else [])
        process = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config.source), *args], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0.0
        while process.poll() is None:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
            time.sleep(0.01)
        assert process.returncode == 0
        return peak

    whole, half = peak_mb(None), peak_mb(1)
    exported = len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines())
    assert exported == sum(1 for i in range(1, 40_001) if i % 60 < 30)
    assert whole < 120 and whole - half < 15  # 40,000 posts cost about what 20,000 do


@pytest.fixture
def datasette(archive):
    """`legation browse`; Datasette answers under /sql/ (the URL this yields)."""
    pytest.importorskip("datasette", reason="browse needs the browse extra: pip install 'legation[browse]'")
    process, url, _ = start_browse(archive.source)
    yield url + "/sql"
    process.terminate()
    assert process.wait(timeout=10) == 0


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_browse_stops_cleanly_and_leaves_nothing_behind(archive, how):
    pytest.importorskip("datasette", reason="browse needs the browse extra: pip install 'legation[browse]'")
    process, _, port = start_browse(archive.source)
    assert not children(process.pid)  # one process: the reading room and Datasette are served in it

    process.send_signal(how)
    returncode = process.wait(timeout=10)

    assert returncode == (0 if how != signal.SIGKILL else -signal.SIGKILL)
    with socket.socket() as probe:  # the port is free for the next browse
        probe.bind(("127.0.0.1", port))


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@pytest.mark.sqlite_only("Datasette reads SQLite files")
def test_browse_serves_the_archive_with_search(datasette, archive):
    database = archive.database.stem
    feed = httpx.get(f"{datasette}/{database}/post_feed.json?_shape=array&post_id=22957").json()
    found = httpx.get(f"{datasette}/{database}/post_search.json?_shape=array&_search=Лаврова").json()
    assert feed[0]["url"] == "https://t.me/MFARussia/22957"
    assert [row["post_id"] for row in found] == [22957]
    hidden = httpx.get(f"{datasette}/{database}.json").json()
    assert {"page_versions", "schema_migrations"} <= {t["name"] for t in hidden["tables"] if t["hidden"]}


@pytest.mark.sqlite_only("Datasette reads SQLite files")
def test_browse_in_a_real_headless_browser(datasette, archive):
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    page = (f"{datasette}/{archive.database.stem}/search?q=%D0%9B%D0%B0%D0%B2%D1%80%D0%BE%D0%B2%D0%B0"
            "&channel=&since=&until=")  # the reading room's search: Лаврова
    dom = rendered_dom(browser, page)
    assert "<mark>Лаврова</mark>" in dom and "as written" in dom
    assert "1 row" in dom


@pytest.mark.sqlite_only("Datasette reads SQLite files")
def test_browse_searches_with_the_engine_of_search_and_shows_a_post_with_its_changes(datasette, archive):
    database = archive.database.stem
    found = httpx.get(f"{datasette}/{database}/search.json", params={
        "q": "С.В.Лаврова", "channel": "", "since": "", "until": "", "_shape": "array"}).json()
    assert [(row["post_id"], row["found"]) for row in found] == [(22957, "as written")]
    assert "\x02" in found[0]["snippet"]  # marks, drawn as <mark> in HTML
    stemmed = httpx.get(f"{datasette}/{database}/search.json", params={
        "q": "Briefings", "channel": "mfarussia", "since": "", "until": "", "_shape": "array"}).json()
    assert {row["found"] for row in stemmed} == {"other forms"} and len(stemmed) == 5
    page = httpx.get(f"{datasette}/{database}/search", params={"q": "Лаврова", "channel": "", "since": "",
                                                               "until": ""}).text
    assert "<mark>Лаврова</mark>" in page
    post = httpx.get(f"{datasette}/{database}/post.json", params={"channel": "MFARussia", "post_id": "3",
                                                                  "_shape": "array"}).json()
    assert [row["item"] for row in post] == ["version 1", "version 2"]
    assert "\x04" in post[1]["text"] and "\x06corrected" in post[1]["text"]
    html = httpx.get(f"{datasette}/{database}/post", params={"channel": "MFARussia", "post_id": "3"}).text
    assert "<ins>corrected</ins>" in html
    home = httpx.get(f"{datasette}/{database}").text
    assert home.index("search posts") < home.index("post_versions")  # readers' entries before raw tables
