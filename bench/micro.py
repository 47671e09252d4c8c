"""In-process benchmarks: parsing, saving, alert matching, search latency."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import SHARED, Row, synthetic_page

from monitor.alerts.rules import Matcher
from monitor.capture.rounds import BACKFILL_PAGES_PER_TRANSACTION
from monitor.config.settings import AlertRule
from monitor.read.search import build_query
from monitor.sources.webpreview import parse_channel_page
from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.models import Post
from storage.posts import save_posts
from storage.search import search_posts

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


FIRST_POST_AT = datetime(2020, 1, 1, tzinfo=UTC)


def make_posts(count: int, seed: int = 1, first_id: int = 1) -> list[Post]:
    """Posts ``first_id``, ... of a channel, ten minutes apart: ids follow dates, as in a channel."""
    rng = random.Random(seed)
    posts = []
    for post_id in range(first_id, first_id + count):
        words = rng.sample(WORDS_RU + WORDS_DE + WORDS_EN, 12)
        url = f"https://mid.ru/ru/foreign_policy/news/{post_id}/"
        date = (FIRST_POST_AT + timedelta(minutes=10 * post_id)).strftime("%Y-%m-%dT%H:%M:%SZ")
        html = " ".join(words) + f'<br/><a href="{url}" target="_blank" rel="noopener">{url}</a>'  # as t.me renders
        posts.append(Post(post_id=post_id, date=date, text=" ".join(words) + f" {url}", html=html,
                          views=rng.randint(100, 100_000)))
    return posts


def bench_saving(count: int = 20_000, batch: int = 20) -> list[Row]:
    from monitor.sources.links import make_links

    posts = [_with_links(p, make_links) for p in make_posts(count)]
    (ours, cpu), (following, _) = _save_rate(posts, batch, ()), _save_rate(posts, batch, ("mid.ru",))
    together, together_cpu = _save_rate(posts, batch, (), BACKFILL_PAGES_PER_TRANSACTION)
    bare = _bare_rate(posts, batch)
    return [Row(f"save: {count} posts in batches of {batch}", ours, "posts/s", "bare executemany, no indexes",
                bare, f"{ours / bare:.2f} of bare (target >= 0.33); target >= 20,000/s; "
                      f"CPU {cpu:.0f} us a post, checkpoint thread included"),
            Row(f"save: {count} posts in batches of {batch}, mid.ru followed", following, "posts/s",
                "the same, nothing followed", ours,
                f"{following / ours:.2f} of it: each post's mid.ru page joins the queue as it is saved"),
            Row(f"save: {count} posts in batches of {batch}, {BACKFILL_PAGES_PER_TRANSACTION} to a transaction "
                "(as a backfill saves)", together, "posts/s", "a transaction a batch", ours,
                f"{together / ours:.2f}x it; CPU {together_cpu:.0f} us a post: a transaction's fixed cost "
                "(its commit, FTS5's new segment) shared by more posts")]


def _save_rate(posts: list[Post], batch: int, follow: tuple[str, ...],
               batches_per_transaction: int = 1) -> tuple[float, float]:
    """Posts per second through storage, in batches of ``batch`` (``batches_per_transaction`` to
    a transaction), ``follow`` followed; and the process's CPU microseconds a post (every
    thread: the checkpoints run beside the writer)."""
    from storage.pages import follow_domains

    with tempfile.TemporaryDirectory() as tmp:
        async def save_all() -> tuple[float, float]:
            async with open_archive(Path(tmp) / "save.sqlite3") as conn:
                async with transaction(conn):
                    channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
                    await follow_domains(conn, follow, "2024-01-01T00:00:00Z")
                start, cpu = time.perf_counter(), time.process_time()
                step = batch * batches_per_transaction
                for first in range(0, len(posts), step):
                    async with transaction(conn):
                        for i in range(first, min(first + step, len(posts)), batch):
                            await save_posts(conn, channel_id, posts[i:i + batch], "2024-06-01T00:00:00Z")
                return time.perf_counter() - start, time.process_time() - cpu

        wall, cpu = asyncio.run(save_all())
        return len(posts) / wall, cpu / len(posts) * 1e6


def _bare_rate(posts: list[Post], batch: int) -> float:
    """Posts per second of a bare executemany of their main columns, no index, same batches."""
    with tempfile.TemporaryDirectory() as tmp:
        bare_db = sqlite3.connect(Path(tmp) / "bare.sqlite3", isolation_level=None)
        bare_db.execute("PRAGMA journal_mode=WAL")
        bare_db.execute("CREATE TABLE posts (channel_id, post_id, date, text, html, views)")
        rows = [(1, p.post_id, p.date, p.text, p.html, p.views) for p in posts]
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            bare_db.execute("BEGIN")
            bare_db.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?, ?)", rows[i:i + batch])
            bare_db.execute("COMMIT")
        bare = len(posts) / (time.perf_counter() - start)
        bare_db.close()
    return bare


def bench_size(count: int = 20_000, rounds: int = 10) -> list[Row]:
    """Archive bytes per post against the text and HTML it holds: synthetic posts after a
    backfill and after ``rounds`` rounds editing every post, and the captured t.me pages."""
    from monitor.sources.links import make_links

    posts = [_with_links(p, make_links) for p in make_posts(count)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "size.sqlite3"
        content = _save_all(path, {"bench": [posts]})
        rows.append(_size_row(f"archive size, {count:,} synthetic posts", path, count, content))
        rounds_of = [[_edited(p, n) for p in posts] for n in range(1, rounds + 1)]
        content += _save_all(path, {"bench": rounds_of})
        rows.append(_size_row(f"archive size, {count:,} posts after {rounds} rounds editing each", path, count,
                              content))
        pages = _captured_pages()
        if pages:
            captured = Path(tmp) / "captured.sqlite3"
            posts_of = {name: [_copies(page, CAPTURED_COPIES)] for name, page in pages.items()}
            content = _save_all(captured, posts_of)
            total = sum(len(batch) for batches in posts_of.values() for batch in batches)
            rows.append(_size_row(f"archive size, the posts of {len(pages)} captured t.me pages x {CAPTURED_COPIES}",
                                  captured, total, content))
    return rows


# The captured pages hold 152 posts: alone, the last, part-filled page of each table and index
# (4 KB each, about 30 bytes a post for each of 15 of them) would weigh as much as the posts.
CAPTURED_COPIES = 20


def _copies(posts: list[Post], copies: int) -> list[Post]:
    """``posts`` again and again under new ids (copy n: ids + n * 100,000), dates and content kept."""
    return [dataclasses.replace(post, post_id=post.post_id + n * 100_000) for n in range(copies) for post in posts]


def _with_links(post: Post, make_links: Callable[..., Any]) -> Post:
    url = (post.text or "").split()[-1]
    return dataclasses.replace(post, links=make_links([(url, "text")]))


def _edited(post: Post, round_: int) -> Post:
    text = f"{post.text} (обновлено {round_})"
    return dataclasses.replace(post, text=text, html=f"{post.html}<br/><i>обновлено {round_}</i>", edited=True)


def _save_all(path: Path, batches_by_channel: dict[str, list[list[Post]]]) -> int:
    """Save each channel's batches as pages of 20, one transaction each; return the text and HTML bytes saved."""
    async def run() -> None:
        async with open_archive(path) as conn:
            for name, batches in batches_by_channel.items():
                async with transaction(conn):
                    channel_id = await ensure_channel(conn, name, "2024-01-01T00:00:00Z")
                for round_, batch in enumerate(batches):
                    for i in range(0, len(batch), 20):
                        async with transaction(conn):
                            await save_posts(conn, channel_id, batch[i:i + 20], f"2024-06-{1 + round_:02d}T00:00:00Z")
    asyncio.run(run())
    return sum(len((p.text or "").encode()) + len((p.html or "").encode())
               for batches in batches_by_channel.values() for batch in batches for p in batch)


def _size_row(name: str, path: Path, posts: int, content: int) -> Row:
    """Bytes per post beyond an empty archive (its schema and empty tables: a fixed cost)."""
    empty = path.with_name("empty.sqlite3")
    if not empty.exists():
        _save_all(empty, {})
    sizes = [_table_sizes(path), _table_sizes(empty)]
    tables = sorted(((table, size - sizes[1].get(table, 0)) for table, size in sizes[0].items()), key=lambda t: -t[1])
    archive = sum(size for _, size in tables)
    biggest = ", ".join(f"{table} {size / posts:.0f}" for table, size in tables[:5])
    return Row(name, archive / posts, "bytes/post", "text + HTML", content / posts,
               f"{archive / content:.2f}x the content (target <= 2x); bytes/post by table: {biggest}")


def _table_sizes(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")  # dbstat of a file at rest: no free pages left by the run
        return dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())


def _captured_pages() -> dict[str, list[Post]]:
    """The posts of every captured t.me channel page in ../shared, by file name."""
    pages = {}
    for path in sorted([*SHARED.glob("*.html"), *(SHARED / "corpus").glob("*.html")]):
        posts = list(parse_channel_page(path.read_text(encoding="utf-8"), "x").posts)
        if len(posts) > 1:  # channel pages, not single-post fragments
            pages[path.stem] = posts
    return pages


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
                    batch = make_posts(min(5_000, count - start), seed=start, first_id=start + 1)
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
