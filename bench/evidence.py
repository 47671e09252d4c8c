"""The evidence chain's cost: its share of saving posts as a backfill saves them, and its bytes a post."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

from common import Row
from micro import make_posts

from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.evidence import append_records, post_content
from storage.posts import save_posts

BATCH = 100  # posts a transaction: a backfill saves five pages of 20 in one
STAMP_EVERY = 500  # records between two time-stamps: an hour of an archive following a few hundred channels


class _RolledBack(Exception):
    pass


async def _measure(path: Path, count: int) -> tuple[float, float, int]:
    async with open_archive(path) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
        posts = make_posts(count)
        begin = time.process_time()
        for start in range(0, count, BATCH):
            async with transaction(conn):
                await save_posts(conn, channel_id, posts[start:start + BATCH], "2024-06-01T00:00:00Z")
        saving = time.process_time() - begin  # CPU of the whole save, the chain included
        records = [("post", f"{channel_id}/{p.post_id}/2", post_content(p.text, p.html, None, None, None, None))
                   for p in make_posts(count, seed=3, first_id=count + 1)]
        begin = time.process_time()
        try:
            async with transaction(conn):
                for start in range(0, count, BATCH):
                    await conn.run(append_records, records[start:start + BATCH], "2024-06-02T00:00:00Z")
                chaining = time.process_time() - begin
                raise _RolledBack
        except _RolledBack:
            pass
        size = (await conn.execute_fetchall("SELECT sum(pgsize) FROM dbstat WHERE name = 'evidence_chain'"))[0][0]
    return saving, chaining, size


def bench_evidence(count: int = 20_000) -> list[Row]:
    from system import bench_backfill

    with tempfile.TemporaryDirectory() as tmp:
        saving, chaining, size = asyncio.run(_measure(Path(tmp) / "evidence.sqlite3", count))
    [backfill] = bench_backfill((5_000,))  # posts per CPU-second of a whole backfill, the chain included
    per_post = chaining / count * 1e6
    share = per_post / (1e6 / backfill.value) * 100
    return [Row("evidence chain: its share of a backfill's CPU", share, "%", "target", 5.0,
                f"{'met' if share < 5 else 'missed'}; {per_post:.1f} us a record, of {1e6 / backfill.value:.0f} us "
                f"a post backfilled ({100 * chaining / saving:.0f}% of saving alone); {size / count:.0f} bytes a "
                "record")]


def bench_stamps(tokens: int = 200) -> list[Row]:
    """A time-stamp's cost: checking a token as `stamp` and `verify` do (against certifi's roots and
    one more), and citing a post of five versions in a 20,000-post archive, then checking the WACZ."""
    import io

    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder
    from tsa import TestTSA

    from monitor.read.cite import gather_citation, verify_citation, write_wacz
    from storage.tokens import check_token, stamped_message, trust_roots

    authority = TestTSA()
    with tempfile.TemporaryDirectory() as tmp:
        roots = trust_roots(authority.write_root(Path(tmp) / "root.pem"))
        record_hash = "ab" * 32
        request = (TimestampRequestBuilder().data(stamped_message(record_hash)).hash_algorithm(HashAlgorithm.SHA256)
                   .build())
        token = authority.respond(request.as_bytes())
        begin = time.perf_counter()
        for _ in range(tokens):
            assert check_token(token, record_hash, roots).ok
        checking = (time.perf_counter() - begin) / tokens * 1000
        wacz_ms, verify_ms, size = asyncio.run(_cite(Path(tmp), authority, roots, gather_citation, write_wacz,
                                                     verify_citation, io))
    return [
        Row("time-stamp token check (certifi's roots + 1)", checking, "ms", "", None,
            f"{len(token)} bytes a token; one token an authority an hour: {24 * 365 * len(token) / 1e6:.1f} MB a year"),
        Row(f"cite: a post of 5 versions in 20,000 posts, a stamp every {STAMP_EVERY} records", wacz_ms, "ms", "",
            None, f"{size / 1024:.0f} KiB WACZ; verify of it offline {verify_ms:.0f} ms"),
    ]


async def _cite(tmp: Path, authority, roots, gather_citation, write_wacz, verify_citation, io) -> tuple[float, float, int]:
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    from storage.evidence import get_chain_head, save_stamp
    from storage.tokens import check_token, stamped_message

    async with open_archive(tmp / "cite.sqlite3") as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "bench", "2024-01-01T00:00:00Z")
        async def stamp() -> None:  # as the daemon's hourly job: the chain's head
            seq, record_hash = await conn.run(get_chain_head)
            request = (TimestampRequestBuilder().data(stamped_message(record_hash))
                       .hash_algorithm(HashAlgorithm.SHA256).build())
            token = authority.respond(request.as_bytes())
            checked = check_token(token, record_hash, roots)
            async with transaction(conn):
                await conn.run(save_stamp, "https://tsa.example/", seq, record_hash, checked.gen_time,
                               checked.signer, token, "2024-06-01T00:00:00Z")

        posts = make_posts(20_000)
        cited = posts[len(posts) // 2]
        edits = {len(posts) // 2 + 2_000 * n: n for n in range(2, 6)}  # four edits, spread over the fill
        for start in range(0, len(posts), BATCH):
            async with transaction(conn):
                await save_posts(conn, channel_id, posts[start:start + BATCH], "2024-06-01T00:00:00Z")
                version = edits.get(start + BATCH)
                if version is not None:
                    cited = dataclasses.replace(cited, text=f"{cited.text} (edit {version})",
                                                html=f"{cited.html} (edit {version})", edited=True)
                    await save_posts(conn, channel_id, [cited], f"2024-06-0{version}T00:00:00Z")
            if (start + BATCH) % STAMP_EVERY == 0:
                await stamp()
        begin = time.perf_counter()
        citation = await conn.run(gather_citation, "bench", cited.post_id, tmp)
        out = io.BytesIO()
        write_wacz(citation, out)
        wacz_ms = (time.perf_counter() - begin) * 1000
    (tmp / "post.wacz").write_bytes(out.getvalue())
    begin = time.perf_counter()
    verdict = verify_citation(tmp / "post.wacz", roots)
    verify_ms = (time.perf_counter() - begin) * 1000
    assert verdict.ok and len(verdict.proven) == 5, verdict
    return wacz_ms, verify_ms, len(out.getvalue())
