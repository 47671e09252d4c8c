"""In-process benchmarks: parsing, saving, alert matching, search latency."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import SHARED, Row, synthetic_page

from monitor.alerts.rules import Matcher
from monitor.config import AlertRule
from monitor.search import build_query
from monitor.sources.webpreview import parse_channel_page
from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.models import Post
from storage.posts import save_posts, search_posts

WORDS_RU = ["министр", "заявление", "хартия", "евразийской", "безопасности", "переговоры", "сотрудничество", "санкции"]
WORDS_DE = ["Außenminister", "Erklärung", "eurasischen", "Charta", "Sicherheit", "Verhandlungen", "Zusammenarbeit"]
WORDS_EN = ["minister", "statement", "Eurasian", "charter", "security", "talks", "cooperation", "sanctions", "briefing"]


def rate(func: Callable[[], Any], units: int, seconds: float = 2.0) -> float:
    """Units per second of ``func``, repeated for about ``seconds`` (best of three slices)."""
    func()  # warm up
    best = 0.0
    for _ in range(3):
        runs, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            func()
            runs += 1
        best = max(best, runs * units / elapsed)
    return best


def bench_parsing() -> list[Row]:
    import lxml.etree

    pages = [("synthetic 20-post page", synthetic_page(20))]
    if (SHARED / "channel-page-swiftui_dev-before-262.html").exists():
        pages.append(("captured swiftui_dev page",
                      (SHARED / "channel-page-swiftui_dev-before-262.html").read_text(encoding="utf-8")))
    rows = []
    for label, html in pages:
        posts = len(parse_channel_page(html, "x").posts)
        ours = rate(lambda html=html: parse_channel_page(html, "x"), posts)
        parser = lxml.etree.HTMLParser()
        floor = rate(lambda html=html, parser=parser: lxml.etree.fromstring(html, parser), posts)
        rows.append(Row(f"parse: {label}", ours, "posts/s", "bare lxml tree", floor,
                        f"{floor / ours:.1f}x the floor (aim < 3x)"))
        sns = _snscrape_rate(html, posts)
        if sns is None:
            rows.append(Row(f"parse: {label}", ours, "posts/s", "snscrape", None, "pip install '.[bench]'"))
        else:
            rows.append(Row(f"parse: {label}", ours, "posts/s", "snscrape telegram parser", sns,
                            f"{ours / sns:.1f}x snscrape (target >= 3x)"))
    return rows


def _snscrape_rate(html: str, posts: int) -> float | None:
    try:
        import bs4
        from snscrape.modules.telegram import TelegramChannelScraper
    except ImportError:
        return None
    scraper = TelegramChannelScraper("x")

    def parse() -> None:
        soup = bs4.BeautifulSoup(html, "lxml")
        list(scraper._soup_to_items(soup, "https://t.me/s/x"))

    return rate(parse, posts)


def make_posts(count: int, seed: int = 1) -> list[Post]:
    rng = random.Random(seed)
    posts = []
    for post_id in range(1, count + 1):
        words = rng.sample(WORDS_RU + WORDS_DE + WORDS_EN, 12)
        text = " ".join(words) + f" https://mid.ru/ru/foreign_policy/news/{post_id}/"
        posts.append(Post(post_id=post_id, date=f"2024-{1 + post_id % 12:02d}-{1 + post_id % 28:02d}T10:00:00Z",
                          text=text, html=text, views=rng.randint(100, 100_000)))
    return posts


def bench_saving(count: int = 20_000, batch: int = 20) -> list[Row]:
    from monitor.links import make_links

    posts = [Post(**{**{k: getattr(p, k) for k in p.__slots__},
                     "links": make_links([(p.text.split()[-1], "text")])})  # type: ignore[union-attr]
             for p in make_posts(count)]
    with tempfile.TemporaryDirectory() as tmp:
        async def save_all() -> float:
            async with open_archive(Path(tmp) / "save.sqlite3") as conn:
                async with transaction(conn):
                    channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
                start = time.perf_counter()
                for i in range(0, len(posts), batch):
                    async with transaction(conn):
                        await save_posts(conn, channel_id, posts[i:i + batch], "2024-06-01T00:00:00Z")
                return time.perf_counter() - start

        ours = count / asyncio.run(save_all())
        with sqlite3.connect(Path(tmp) / "save.sqlite3") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            tables = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        archive = sum(size for _, size in tables)
        content = sum(len((p.text or "").encode()) + len((p.html or "").encode()) for p in posts)
        bare_db = sqlite3.connect(Path(tmp) / "bare.sqlite3", isolation_level=None)
        bare_db.execute("PRAGMA journal_mode=WAL")
        bare_db.execute("CREATE TABLE posts (channel_id, post_id, date, text, html, views)")
        rows = [(1, p.post_id, p.date, p.text, p.html, p.views) for p in posts]
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            bare_db.execute("BEGIN")
            bare_db.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?, ?)", rows[i:i + batch])
            bare_db.execute("COMMIT")
        bare = count / (time.perf_counter() - start)
        bare_db.close()
    biggest = ", ".join(f"{name} {size / count:.0f}" for name, size in tables[:4])
    return [Row(f"save: {count} posts in batches of {batch}", ours, "posts/s", "bare executemany, no indexes",
                bare, f"{ours / bare:.2f} of bare (target >= 0.33); target >= 20,000/s"),
            Row(f"archive size after saving {count} posts", archive / count, "bytes/post", "text + HTML",
                content / count, f"{archive / content:.1f}x the content (target <= 2x); by table, bytes/post: "
                                 f"{biggest}")]


def bench_alerts(posts: int = 2_000) -> list[Row]:
    texts = [p.text or "" for p in make_posts(posts, seed=2)]
    rows = []
    single = None
    for keywords in (10, 1_000, 10_000):
        rng = random.Random(keywords)
        terms = [f"{rng.choice(WORDS_RU)}{i}" for i in range(keywords - 3)] + ["хартия", "Charta", "charter"]
        matcher = Matcher([AlertRule("bench", keywords=tuple(terms), language="ru")])
        speed = rate(lambda m=matcher: [m.match(t) for t in texts], len(texts))
        single = single or speed
        rows.append(Row(f"alerts: {keywords} keywords, stemming", speed, "posts/s", "10 keywords", single,
                        f"{single / speed:.1f}x slower for {keywords // 10}x keywords; target > 20,000/s at 1,000"))
    return rows


def bench_search(count: int, queries: int = 200) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        async def run() -> list[float]:
            async with open_archive(Path(tmp) / "search.sqlite3") as conn:
                async with transaction(conn):
                    channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
                for start in range(0, count, 5_000):
                    batch = [Post(post_id=p.post_id + start, date=p.date, text=p.text, html=p.text)
                             for p in make_posts(min(5_000, count - start), seed=start)]
                    async with transaction(conn):
                        await save_posts(conn, channel_id, batch, "2024-06-01T00:00:00Z")
                rng = random.Random(7)
                samples = []
                for _ in range(queries):
                    # plain words (stemmed: exact matches first, then other forms), phrases, raw FTS5
                    query = rng.choice([build_query(rng.choice(WORDS_RU)), build_query(rng.choice(WORDS_EN)),
                                        build_query(f'"{rng.choice(WORDS_DE)}"'),
                                        build_query(f"{rng.choice(WORDS_RU)} {rng.choice(WORDS_RU)}"),
                                        build_query(f"{rng.choice(WORDS_EN)} OR {rng.choice(WORDS_DE)}", raw=True)])
                    begin = time.perf_counter()
                    await search_posts(conn, query.exact, wider=query.wider, limit=20)
                    samples.append((time.perf_counter() - begin) * 1000)
                return samples

        samples = sorted(asyncio.run(run()))
    p50, p95 = statistics.median(samples), samples[int(len(samples) * 0.95)]
    return [Row(f"search p50 over {count:,} posts (plain words, stemmed, exact first)", p50, "ms", "target", 50.0, "latency"),
            Row(f"search p95 over {count:,} posts (plain words, stemmed, exact first)", p95, "ms", "target", 50.0,
                "met" if p95 < 50 else "missed: p95 target < 50 ms")]
