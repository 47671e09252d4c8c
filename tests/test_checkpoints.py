"""The archive connection's thread, and the checkpoints that run beside the writer."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from storage.channels import ensure_channel
from storage.db import CHECKPOINT_WAL_BYTES, WRITER_CHECKPOINT_PAGES, connect, open_archive, transaction
from storage.models import Post
from storage.posts import save_posts


def _posts(first: int, count: int) -> list[Post]:
    text = "Заявление МИД России о ходе переговоров. " * 25  # about 1.8 KB of text, as much of HTML
    return [Post(post_id=i, date=f"2024-05-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                 text=f"{i} {text}", html=f"<b>{i}</b> {text}") for i in range(first, first + count)]


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "legation-checkpoint"]


async def test_the_log_is_copied_beside_the_writer_and_starts_over(tmp_path):
    """A checkpoint thread copies the write-ahead log into the archive while the writer goes
    on, then the writer copies the last frames itself, so the log starts over: it never grows
    near the size at which the writer would checkpoint everything itself. Closing waits for
    that thread, and the last connection to close leaves no log behind."""
    path = tmp_path / "archive.sqlite3"
    wal = tmp_path / "archive.sqlite3-wal"
    largest = 0
    async with open_archive(path) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
        for first in range(1, 6001, 20):  # about 30 MB through the log
            async with transaction(conn):
                await save_posts(conn, channel_id, _posts(first, 20), "2024-06-01T00:00:00Z")
            largest = max(largest, os.stat(wal).st_size)
        checkpointer = conn.checkpointer
        assert checkpointer is not None
        assert checkpointer.runs >= 3 and checkpointer.writer_runs >= 3
        count = (await conn.execute_fetchall("SELECT count(*) FROM posts"))[0][0]
    assert count == 6000
    writer_limit = WRITER_CHECKPOINT_PAGES * 4096
    assert largest < 2 * CHECKPOINT_WAL_BYTES < writer_limit
    assert _checkpoint_threads() == []
    assert not wal.exists()


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
