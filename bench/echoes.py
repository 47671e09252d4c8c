"""The analyst's instruments: echo signatures against datasketch's MinHash, indexing cost per
post, echo lookup p95 at a million posts, and the bytes reach costs a post for a month of polls."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import Row
from micro import WORDS_DE, WORDS_EN, WORDS_RU, make_posts

from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.echoes import (
    BANDS,
    ROWS,
    SIGNATURE_BINS,
    band_keys,
    find_echoes,
    index_echoes,
    jaccard,
    shingles,
    signature,
)
from storage.models import Post
from storage.posts import save_posts
from storage.reach import record_reach

VOCABULARY = WORDS_RU + WORDS_DE + WORDS_EN


def _text(rng: random.Random, words: int = 60) -> list[str]:
    return [rng.choice(VOCABULARY) + str(rng.randint(0, 50)) for _ in range(words)]


def bench_signatures(pairs: int = 2_000) -> list[Row]:
    """Our one-permutation signature and datasketch's MinHash (as many permutations as we have
    bins) on the same pairs of texts: time per signature, error of the Jaccard estimate, and the
    share of pairs at 0.5-0.7 that our bands make candidates."""
    rng = random.Random(11)
    samples = []
    for _ in range(pairs):
        base = _text(rng)
        other = list(base)
        for index in rng.sample(range(len(other)), rng.randint(0, 40)):
            other[index] = rng.choice(VOCABULARY) + "x"
        samples.append((shingles(" ".join(base)), shingles(" ".join(other))))
    ours_time, ours_error, recall, expected = 0.0, [], [], []
    for a, b in samples:
        begin = time.perf_counter()
        sa, sb = signature(a), signature(b)
        ours_time += time.perf_counter() - begin
        exact = jaccard(a, b)
        ours_error.append(abs(sum(x == y for x, y in zip(sa, sb, strict=True)) / SIGNATURE_BINS - exact))
        if 0.5 <= exact < 0.7:
            recall.append(bool(set(band_keys(sa)) & set(band_keys(sb))))
            expected.append(1 - (1 - exact ** ROWS) ** BANDS)
    reference, reference_error = None, None
    try:
        from datasketch import MinHash

        reference_time, errors = 0.0, []
        for a, b in samples:
            begin = time.perf_counter()
            ma, mb = MinHash(num_perm=SIGNATURE_BINS), MinHash(num_perm=SIGNATURE_BINS)
            ma.update_batch(list(a))
            mb.update_batch(list(b))
            reference_time += time.perf_counter() - begin
            errors.append(abs(ma.jaccard(mb) - jaccard(a, b)))
        reference, reference_error = reference_time / (2 * pairs) * 1e6, statistics.mean(errors)
    except ImportError:
        pass
    per_signature = ours_time / (2 * pairs) * 1e6
    return [
        Row(f"echo signature of a 60-word post ({SIGNATURE_BINS} bins)", per_signature, "us",
            "datasketch MinHash, same size" if reference is not None else "datasketch not installed", reference,
            f"Jaccard estimate error {statistics.mean(ours_error):.3f} (datasketch "
            f"{reference_error:.3f})" if reference_error is not None else ""),
        Row(f"pairs at similarity 0.5-0.7 that share one of the {BANDS} bands", 100 * statistics.mean(recall), "%",
            f"theory, 1-(1-s^{ROWS})^{BANDS} at their similarities", 100 * statistics.mean(expected),
            f"{len(recall)} pairs; each candidate's similarity is then computed exactly"),
    ]


BOILERPLATE = "Министерство иностранных дел Российской Федерации заявляет следующее по этому поводу"


def statements(count: int, seed: int, first_id: int) -> list[Post]:
    """Posts of 50 to 80 words: a phrase every statement opens with, then words of a vocabulary
    of about 1,800, and a link (left out of the signature, as every link is)."""
    rng = random.Random(seed)
    return [dataclasses.replace(post, text=f"{BOILERPLATE} {' '.join(_text(rng, rng.randint(42, 72)))} "
                                           f"https://mid.ru/ru/foreign_policy/news/{post.post_id}/")
            for post in make_posts(count, seed=seed, first_id=first_id)]


async def _fill(path: Path, count: int, reposts: int) -> tuple[float, list[int]]:
    """``count`` posts, saved as a backfill saves them, and ``reposts`` copies of some of them in
    another channel; returns (seconds saving the ``count``, the reposted ids)."""
    async with open_archive(path) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
            copies = await ensure_channel(conn, "copies", "2024-01-01T00:00:00Z")
        rng = random.Random(5)
        started = time.perf_counter()
        for start in range(0, count, 5_000):
            batch = statements(min(5_000, count - start), seed=start, first_id=start + 1)
            async with transaction(conn):
                await save_posts(conn, channel_id, batch, "2024-06-01T00:00:00Z")
        saving = time.perf_counter() - started
        reposted = rng.sample(range(1, count + 1), reposts)
        wanted = set(reposted)
        originals = {p.post_id: p for start in range(0, count, 5_000)
                     for p in statements(min(5_000, count - start), seed=start, first_id=start + 1)
                     if p.post_id in wanted}
        async with transaction(conn):  # reposts in another channel, without a forward
            await save_posts(conn, copies, [dataclasses.replace(originals[i], post_id=n)
                                            for n, i in enumerate(reposted, start=1)], "2024-06-02T00:00:00Z")
    return saving, reposted


class _RolledBack(Exception):
    pass


async def _indexing_cost(path: Path, count: int, posts: int = 5_000) -> float:
    """Microseconds to index one new post into the archive, through the archive's own connection,
    in a transaction rolled back afterwards."""
    fresh = statements(posts, seed=count + 7, first_id=count + 1)
    async with open_archive(path) as conn:
        try:
            async with transaction(conn):
                begin = time.perf_counter()
                await conn.run(index_echoes, 1, [(p.post_id, p.text, None) for p in fresh], "2024-06-03T00:00:00Z")
                elapsed = time.perf_counter() - begin
                raise _RolledBack
        except _RolledBack:
            pass
    return elapsed / posts * 1e6


def bench_echoes(count: int = 1_000_000, lookups: int = 200) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "echoes.sqlite3"
        saving, reposted = asyncio.run(_fill(path, count, lookups))
        indexing = asyncio.run(_indexing_cost(path, count))
        db = sqlite3.connect(path)
        rng = random.Random(9)
        samples, found = [], 0
        for post_id in rng.sample(reposted, lookups // 2) + rng.sample(range(1, count + 1), lookups // 2):
            begin = time.perf_counter()
            echoes = find_echoes(db, "bench", post_id)
            samples.append((time.perf_counter() - begin) * 1000)
            found += sum(1 for e in echoes or [] if e.kind == "repost")
        bands = db.execute("SELECT count(*) FROM echo_bands").fetchone()[0]
        size = sum(row[0] for row in db.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN ('echo_bands', 'echo_signatures', 'echo_pairs')"))
        db.close()
    samples.sort()
    p95 = samples[int(len(samples) * 0.95)]
    return [
        Row(f"echoes lookup over {count:,} posts, p95", p95, "ms", "target", 50.0,
            f"{'met' if p95 < 50 else 'missed'}; p50 {statistics.median(samples):.1f} ms; "
            f"{found} of {lookups // 2} reposts found"),
        Row(f"save rate of {count:,} posts of 50-80 words, echo indexing included", count / saving, "posts/s", "",
            None, f"{bands / count:.1f} band rows and {size / count:.0f} bytes of echo index a post"),
        Row(f"echo indexing of a new post into {count:,}", indexing, "us", "the whole save of a post",
            1e6 / (count / saving), f"{100 * indexing / (1e6 / (count / saving)):.0f}% of saving it"),
    ]


def bench_reach(posts: int = 200, days: int = 30, every_minutes: int = 5) -> list[Row]:
    """A month of polls every five minutes, each post's count changing at every reading."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reach.sqlite3"
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE post_reach (channel_id INTEGER NOT NULL, post_id INTEGER NOT NULL, at TEXT NOT NULL, "
            "views INTEGER NOT NULL, PRIMARY KEY (channel_id, post_id, at)) WITHOUT ROWID;")
        posted = datetime(2024, 5, 1, tzinfo=UTC)
        readings = days * 24 * 60 // every_minutes
        started = time.perf_counter()
        for reading in range(readings):
            at = (posted + timedelta(minutes=every_minutes * reading)).strftime("%Y-%m-%dT%H:%M:%SZ")
            record_reach(db, 1, [(post_id, "2024-05-01T00:00:00Z", 100 + reading * post_id, reading == 0)
                                 for post_id in range(1, posts + 1)], at)
        db.commit()
        cost = (time.perf_counter() - started) / (readings * posts) * 1e6
        points = db.execute("SELECT count(*) FROM post_reach").fetchone()[0]
        size = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'post_reach'").fetchone()[0]
        db.close()
    return [Row(f"reach: bytes a post for {days} days of polls every {every_minutes} min", size / posts, "bytes",
                "every reading kept", readings * size / points,
                f"{points / posts:.0f} points a post of {readings} readings; {cost:.1f} us a reading")]
