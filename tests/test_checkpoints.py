"""The archive connection's thread, and the checkpoints that run beside the writer."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.models import Post
from storage.posts import save_posts
from storage.sqlite.connection import CHECKPOINT_WAL_BYTES, WRITER_WAITS_WAL_BYTES, connect


def _posts(first: int, count: int) -> list[Post]:
    text = "Заявление МИД России о ходе переговоров. " * 25  # about 1.8 KB of text, as much of HTML
    return [Post(post_id=i, date=f"2024-05-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                 text=f"{i} {text}", html=f"<b>{i}</b> {text}") for i in range(first, first + count)]


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "legation-checkpoint"]


async def _write_through_the_log(path: Path, *, writer_waits_at: int | None = None) -> tuple[list[int], Any]:
    """About 30 MB through the log, a transaction of 20 posts at a time: (the log's size after
    each commit, the checkpointer)."""
    wal = path.with_name(path.name + "-wal")
    sizes = []
    async with open_archive(path) as conn:
        checkpointer = conn.checkpointer
        assert checkpointer is not None
        if writer_waits_at is not None:
            checkpointer.writer_waits_at = writer_waits_at
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
        for first in range(1, 6001, 20):
            async with transaction(conn):
                await save_posts(conn, channel_id, _posts(first, 20), "2024-06-01T00:00:00Z")
            sizes.append(os.stat(wal).st_size)
        assert (await conn.execute_fetchall("SELECT count(*) FROM posts"))[0][0] == 6000
    return sizes, checkpointer


def _longest_stretch_at_or_over(sizes: list[int], limit: int) -> int:
    """The most commits in a row after which the log held ``limit`` bytes or more."""
    longest = stretch = 0
    for size in sizes:
        stretch = stretch + 1 if size >= limit else 0
        longest = max(longest, stretch)
    return longest


async def test_the_log_is_copied_beside_the_writer_and_starts_over(tmp_path):
    """A checkpoint thread copies the write-ahead log into the archive while the writer goes
    on, then the writer copies the last frames itself, so the log starts over. Closing waits for
    that thread, and the last connection to close leaves no log behind."""
    path = tmp_path / "archive.sqlite3"
    sizes, checkpointer = await _write_through_the_log(path)
    assert checkpointer.runs >= 3 and checkpointer.writer_runs >= 2
    assert sum(after < before for before, after in itertools.pairwise(sizes)) >= 2  # started over
    # how near the log stays to CHECKPOINT_WAL_BYTES depends on the disk (about 6 MB here);
    # past the size at which the writer waits, it holds for two commits at most
    assert _longest_stretch_at_or_over(sizes, WRITER_WAITS_WAL_BYTES) <= 2
    assert _checkpoint_threads() == []
    assert not path.with_name(path.name + "-wal").exists()


async def test_a_writer_faster_than_the_copies_waits_for_them(tmp_path):
    """While the thread copies, the writer's own checkpoints fail: on a disk slower than the
    writer, the log would grow as long as the writer writes. Once it holds ``writer_waits_at``,
    the writer waits for the copy under way and copies the rest itself, and the log starts over
    at the next commit. Here the writer waits as soon as a copy starts."""
    path = tmp_path / "archive.sqlite3"
    sizes, checkpointer = await _write_through_the_log(path, writer_waits_at=CHECKPOINT_WAL_BYTES)
    assert checkpointer.runs >= 3 and checkpointer.writer_runs >= 3
    assert max(sizes) >= CHECKPOINT_WAL_BYTES  # copies were asked for ...
    assert _longest_stretch_at_or_over(sizes, CHECKPOINT_WAL_BYTES) <= 2  # ... and the writer waited
    assert not path.with_name(path.name + "-wal").exists()


async def test_a_connection_that_only_reads_starts_no_checkpoint_thread(tmp_path):
    path = tmp_path / "archive.sqlite3"
    async with open_archive(path) as conn, transaction(conn):
        await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
    before = len(_checkpoint_threads())
    async with open_archive(path, create=False) as conn:
        await conn.execute_fetchall("SELECT * FROM posts")
        assert len(_checkpoint_threads()) == before


async def test_the_connection_thread_hands_back_errors_and_outlives_a_cancelled_caller(tmp_path):
    troubles: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: troubles.append(context))
    conn = await connect(tmp_path / "a.sqlite3")
    try:
        with pytest.raises(ZeroDivisionError):
            await conn.run(lambda db: 1 / 0)
        started, release = threading.Event(), threading.Event()

        def slow(db):
            started.set()
            release.wait(5)
            return db.execute("SELECT 1").fetchone()[0]

        waiting = asyncio.ensure_future(conn.run(slow))
        await asyncio.to_thread(started.wait, 5)
        waiting.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await conn.run(lambda db: db.execute("SELECT 2").fetchone()[0]) == 2
        assert troubles == []  # the cancelled call's result was dropped, not set on a done future
    finally:
        await conn.close()
