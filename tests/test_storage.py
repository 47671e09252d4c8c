"""Storage: migrator, fresh vs upgraded schema, saving with versions and links, FTS search."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3

import pytest

from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.errors import ArchiveMissing, MigrationError, SearchQueryError
from storage.models import Link, Post
from storage.posts import save_posts
from storage.runs import delete_runs_before, save_run_end, save_run_start
from storage.search import search_posts
from storage.sqlite.connection import connect
from storage.sqlite.migrate import Migration, load_migrations, migrate, split_statements


def schema(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()


async def test_migrations_apply_once_and_are_recorded(tmp_path):
    conn = await connect(tmp_path / "a.sqlite3")
    try:
        applied = await migrate(conn)
        again = await migrate(conn)
        rows = await conn.execute_fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
        mode = await conn.execute_fetchall("PRAGMA journal_mode")
    finally:
        await conn.close()
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    assert again == []
    assert [tuple(r) for r in rows] == [(m.version, m.name) for m in load_migrations()]
    assert mode[0][0] == "wal"


@pytest.mark.parametrize("start", range(1, len(load_migrations()) + 1))
async def test_an_upgraded_database_equals_a_fresh_one(tmp_path, start):
    migrations = load_migrations()
    fresh, upgraded = tmp_path / "fresh.sqlite3", tmp_path / "upgraded.sqlite3"
    async with open_archive(fresh):
        pass
    conn = await connect(upgraded)
    try:
        await migrate(conn, migrations[:start])
        await migrate(conn, migrations)
    finally:
        await conn.close()
    assert schema(upgraded) == schema(fresh)


async def test_an_edited_migration_is_refused(tmp_path):
    conn = await connect(tmp_path / "a.sqlite3")
    try:
        await migrate(conn, [Migration(1, "first", "CREATE TABLE t (a);")])
        with pytest.raises(MigrationError, match="was edited"):
            await migrate(conn, [Migration(1, "first", "CREATE TABLE t (a, b);")])
    finally:
        await conn.close()


async def test_a_newer_archive_is_refused(tmp_path):
    conn = await connect(tmp_path / "a.sqlite3")
    try:
        await migrate(conn, [Migration(1, "a", "CREATE TABLE a (x);"), Migration(2, "b", "CREATE TABLE b (x);")])
        with pytest.raises(MigrationError, match="newer than this legation"):
            await migrate(conn, [Migration(1, "a", "CREATE TABLE a (x);")])
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_behind(tmp_path):
    conn = await connect(tmp_path / "a.sqlite3")
    try:
        with pytest.raises(MigrationError, match="0001_broken failed"):
            await migrate(conn, [Migration(1, "broken", "CREATE TABLE good (x);\nCREATE TABLE good (x);")])
        tables = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE name = 'good'")
        ledger = await conn.execute_fetchall("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert (list(tables), ledger[0][0]) == ([], 0)


def test_statements_split_with_trigger_bodies_whole():
    sql = "-- c\nCREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    assert split_statements(sql) == ["-- c\nCREATE TABLE a (x);", "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;"]


async def test_reading_commands_do_not_create_an_archive(tmp_path):
    with pytest.raises(ArchiveMissing, match="no archive at .*none.sqlite3; run 'legation backfill'"):
        async with open_archive(tmp_path / "none.sqlite3", create=False):
            pass
    assert not (tmp_path / "none.sqlite3").exists()


def post(post_id: int, text: str, **kwargs) -> Post:
    return Post(post_id=post_id, date=f"2024-05-{post_id:02d}T10:00:00Z", text=text, html=text, **kwargs)


@contextlib.asynccontextmanager
async def _connected(path):
    """A connection to ``path`` without migrating it (to build an archive as an older release did)."""
    conn = await connect(path)
    try:
        yield conn
    finally:
        await conn.close()


async def save(db, channel_id, posts, at="2024-06-01T00:00:00Z"):
    async with transaction(db):
        return await save_posts(db, channel_id, posts, at)


async def test_save_inserts_versions_and_touches(db):
    async with transaction(db):
        channel_id = await ensure_channel(db, "MFARussia", "2024-06-01T00:00:00Z")
    link = Link("https://mid.ru/a", "https://mid.ru/a", "text", "mid.ru")

    first = await save(db, channel_id, [post(1, "Лавров о Хартии", links=(link,), views=10), post(2, "two")])
    same = await save(db, channel_id, [post(1, "Лавров о Хартии", links=(link,), views=99)], "2024-06-02T00:00:00Z")
    edited = await save(db, channel_id, [post(1, "Лавров о Евразийской хартии", views=120, edited=True)],
                        "2024-06-03T00:00:00Z")

    assert (first.new, first.changed, same.unchanged, edited.changed) == (2, 0, 1, 1)
    rows = await db.execute_fetchall(
        "SELECT version, text, views, edited, first_seen_at, last_seen_at FROM posts WHERE post_id = 1")
    assert tuple(rows[0]) == (2, "Лавров о Евразийской хартии", 120, 1, "2024-06-01T00:00:00Z", "2024-06-03T00:00:00Z")
    versions = await db.execute_fetchall("SELECT version, text, seen_at FROM post_versions WHERE post_id = 1")
    assert [tuple(v) for v in versions] == [(1, "Лавров о Хартии", "2024-06-01T00:00:00Z"),
                                            (2, "Лавров о Евразийской хартии", "2024-06-03T00:00:00Z")]
    links = await db.execute_fetchall("SELECT url FROM links WHERE post_id = 1")
    assert list(links) == []  # the edit removed the link


async def test_poll_results_are_not_content(db):
    async with transaction(db):
        channel_id = await ensure_channel(db, "polls", "2024-06-01T00:00:00Z")
    poll = {"type": "poll", "question": "Q?", "options": [{"text": "A", "percent": 10}], "voters": 5}
    moved = {"type": "poll", "question": "Q?", "options": [{"text": "A", "percent": 90}], "voters": 50}

    await save(db, channel_id, [post(1, "", media=(poll,))])
    result = await save(db, channel_id, [post(1, "", media=(moved,))])

    assert result.unchanged == 1


async def test_search_follows_edits_and_rejects_bad_syntax(db):
    async with transaction(db):
        channel_id = await ensure_channel(db, "MFARussia", "2024-06-01T00:00:00Z")
        other = await ensure_channel(db, "BelTA_eng", "2024-06-01T00:00:00Z")
    await save(db, channel_id, [post(1, "Заявление о Хартии евразийской безопасности"), post(3, "Lavrov met Wang Yi")])
    await save(db, other, [post(2, "Lukashenko and Lavrov discussed the Eurasian charter")])
    await save(db, channel_id, [post(1, "Заявление отозвано")])

    hits = await search_posts(db, "lavrov")
    assert [(h.username, h.post_id) for h in hits] == [("MFARussia", 3), ("BelTA_eng", 2)]
    assert hits[0].snippet == "\x02Lavrov\x03 met Wang Yi"
    assert await search_posts(db, "Хартии") == []  # the old text left the index with the edit
    assert [h.post_id for h in await search_posts(db, "lavrov", channel="belta_eng")] == [2]
    assert [h.post_id for h in await search_posts(db, "lavrov", since="2024-05-03T00:00:00Z")] == [3]
    assert [h.post_id for h in await search_posts(db, "lavrov", limit=1)] == [3]
    for bad in ('"unclosed', "AND", "lavrov OR", "col:x", "(", "*"):
        with pytest.raises(SearchQueryError, match=f"invalid search query {re.escape(repr(bad))}: "):
            await search_posts(db, bad)


async def test_the_archive_connection_runs_everything_on_one_thread_of_its_own(db):
    """Every statement and every batch function runs on the connection's own thread, in order;
    a cursor iterates in chunks; a closed connection says so."""
    import threading

    from storage.sqlite.connection import FETCH_ROWS, connect

    loop_thread = threading.get_ident()
    threads = set(await asyncio.gather(*(db.run(lambda raw: threading.get_ident()) for _ in range(20))))
    assert len(threads) == 1 and loop_thread not in threads
    assert await db.run(lambda raw, x: raw.execute("SELECT ? + 1", (x,)).fetchone()[0], 41) == 42
    count = FETCH_ROWS * 2 + 3
    async with db.execute(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) "
                          "SELECT i FROM n") as cursor:
        assert [row[0] async for row in cursor] == list(range(1, count + 1))
    order: list[int] = []
    await asyncio.gather(*(db.run(lambda raw, i=i: order.append(i)) for i in range(50)))
    assert order == list(range(50))
    other = await connect(":memory:")
    await other.close()
    await other.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        await other.execute_fetchall("SELECT 1")


async def test_posts_archived_before_the_time_keyed_index_are_searchable_after_it(tmp_path):
    migrations = load_migrations()
    before = [m for m in migrations if m.version < 7]
    conn = await connect(tmp_path / "old.sqlite3")
    try:
        await migrate(conn, before)
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
            for old in (post(1, "Lavrov in Beijing"), post(2, "Lavrov in Minsk")):  # as version 6 wrote them
                await conn.execute(
                    "INSERT INTO posts (channel_id, post_id, date, text, content_hash, first_seen_at, last_seen_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (channel_id, old.post_id, old.date, old.text, old.content_hash(), "2024-06-01T00:00:00Z",
                     "2024-06-01T00:00:00Z"))
        await migrate(conn, migrations)
        hits = await search_posts(conn, "lavrov")
    finally:
        await conn.close()
    assert [(h.post_id, h.snippet) for h in hits] == [(2, "\x02Lavrov\x03 in Minsk"), (1, "\x02Lavrov\x03 in Beijing")]


async def test_a_schema_error_is_a_bug_not_a_write_failure(db):
    from storage.errors import WriteFailed

    with pytest.raises(sqlite3.DatabaseError, match='no such column: no_such_column|column "no_such_column"') as caught:
        async with transaction(db):
            await db.execute("UPDATE posts SET no_such_column = 1")
    assert not isinstance(caught.value, WriteFailed)


@pytest.mark.slow
async def test_search_keys_stay_unique_when_a_hundred_thousand_posts_share_a_second(tmp_path):
    path = tmp_path / "archive.sqlite3"
    async with open_archive(path) as conn, transaction(conn):
        await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
    with sqlite3.connect(path) as raw:  # undated posts all share second 0; then one that is dated
        raw.executemany(
            "INSERT INTO posts (channel_id, post_id, date, text, content_hash, first_seen_at, last_seen_at) "
            "VALUES (1, ?, NULL, ?, 'h', 't', 't')", [(i, f"post {i}") for i in range(1, 100_006)])
        raw.execute("INSERT INTO posts (channel_id, post_id, date, text, content_hash, first_seen_at, last_seen_at) "
                    "VALUES (1, 200000, '1970-01-01T00:00:01Z', 'dated', 'h', 't', 't')")
        raw.execute("UPDATE posts SET text = 'edited' WHERE post_id = 100005")
        keys = raw.execute("SELECT count(*), count(DISTINCT key), min(key) FROM post_search").fetchone()
        dated = raw.execute("SELECT key FROM post_search WHERE post_id = 200000").fetchone()
    assert keys == (100_006, 100_006, -5)  # five past the full second, the edited one keeping its place
    assert dated == (100_000,)  # the next second's first key, untouched by the overflow


@pytest.mark.slow
async def test_saved_posts_take_the_search_keys_the_insert_trigger_gives(tmp_path):
    """Saving computes the keys of a batch's new posts in one query (migration 0020); they
    must be those that the trigger, one row at a time, gives posts inserted without one:
    the next key of the post's second, the first key of an empty second, below every key
    once a second is full (several in one batch), and a second before 1970 whose keys the
    overflow has reached."""
    full_second = "2024-05-02T10:00:00Z"
    batches = [
        [post(1, "first"), post(2, "two in one second"), Post(3, None, "undated", "undated")],
        [Post(4, full_second, "the second is full", "x"), Post(5, full_second, "one past it", "x"),
         Post(6, full_second, "two past it", "x"), post(7, "after them"), Post(8, None, "undated too", "x"),
         Post(9, "1969-12-31T23:59:59Z", "before 1970", "x"), post(7, "twice in a batch"),
         Post(11, "2024-05-07T10:00:00Z", "beside 7", "x")],
        [Post(10, full_second, "three past it", "x"), post(2, "an edit takes a fresh key")],
    ]
    keys = {}
    for way in ("trigger", "save"):
        path = tmp_path / f"{way}.sqlite3"
        async with open_archive(path) as conn, transaction(conn):
            await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
        with sqlite3.connect(path) as raw:  # the second of posts 2 and 4 with one key left
            raw.executemany(
                "INSERT INTO posts (channel_id, post_id, date, text, content_hash, first_seen_at, last_seen_at) "
                "VALUES (1, ?, ?, 'filler', 'h', 't', 't')", [(-i, full_second) for i in range(1, 100_000)])
        async with open_archive(path) as conn:
            for batch in batches:
                if way == "save":
                    await save(conn, 1, batch)
                    continue
                async with transaction(conn):
                    for one in batch:
                        await conn.execute(
                            "INSERT INTO posts (channel_id, post_id, date, text, content_hash, first_seen_at,"
                            " last_seen_at) VALUES (1, ?, ?, ?, 'h', 't', 't') ON CONFLICT (channel_id, post_id)"
                            " DO UPDATE SET text = excluded.text", (one.post_id, one.date, one.text))
            rows = await conn.execute_fetchall("SELECT post_id, search_key FROM posts WHERE post_id > 0 ORDER BY 1")
            keys[way] = [tuple(row) for row in rows]
            await conn.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)")
            found = [h.post_id for h in await search_posts(conn, "past OR undated OR fresh")]
    assert keys["save"] == keys["trigger"]
    saved = dict(keys["save"])
    assert saved[2] == 1714644000 * 100000 + 99_999  # the last key of 2024-05-02T10:00:00Z
    assert [saved[i] for i in (4, 5, 6, 9, 10)] == [-1, -2, -3, -4, -5]  # past it: below every key
    assert (saved[3], saved[8]) == (0, 1)  # undated: second 0
    assert saved[11] == saved[7] + 1
    assert found == [2, 8, 3, 5, 6, 10]  # newest key first


async def test_an_archive_made_before_search_read_from_posts_migrates_with_nothing_lost(tmp_path):
    """Migration 0015 turns post_search into a view over posts: same rows, same search results,
    a consistent full-text index, and new posts searchable after it."""
    from storage.sqlite.migrate import load_migrations, migrate

    path = tmp_path / "old.sqlite3"
    every = load_migrations()
    before_0015 = [m for m in every if m.version < 15]
    async with _connected(path) as conn:
        await migrate(conn, before_0015)
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
            # rows as that version wrote them (its triggers fill post_search)
            for post_id, date, text in [(i, f"2024-05-{i:02d}T10:00:00Z", f"Заявление {i} о хартии")
                                        for i in range(1, 21)] + [(21, None, "undated Лавров")]:
                await conn.execute(
                    "INSERT INTO posts (channel_id, post_id, date, text, html, content_hash, version, first_seen_at,"
                    " last_seen_at) VALUES (?, ?, ?, ?, ?, 'h', 1, 'x', 'x')", (channel_id, post_id, date, text, text))
            await conn.execute("UPDATE posts SET text = 'Заявление 5 исправлено: Лавров' WHERE post_id = 5")
        old_rows = [tuple(r) for r in await conn.execute_fetchall("SELECT * FROM post_search ORDER BY key")]
        old_hits = [(h.post_id, h.snippet) for h in await search_posts(conn, '"Лавров"')]
    assert len(old_rows) == 21 and len(old_hits) == 2

    async with open_archive(path) as conn:  # brings it up to date
        new_rows = [tuple(r) for r in await conn.execute_fetchall("SELECT * FROM post_search ORDER BY key")]
        assert new_rows == old_rows
        assert [(h.post_id, h.snippet) for h in await search_posts(conn, '"Лавров"')] == old_hits
        await conn.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)")
        await save(conn, 1, [post(22, "новый Лавров"), post(3, "Заявление 3: Лавров")])
        assert [h.post_id for h in await search_posts(conn, '"Лавров"')] == [22, 5, 3, 21]
        await conn.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)")
        tables = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "post_search" not in tables  # the text is stored once less


async def test_an_archive_whose_links_had_rowids_migrates_with_nothing_lost(tmp_path):
    """Migration 0021 stores links by their primary key (WITHOUT ROWID): the same rows, the
    views that read them unchanged, no index of its own for the key, and saving goes on."""
    from storage.pages import follow_domains

    path = tmp_path / "old.sqlite3"
    async with _connected(path) as conn:
        await migrate(conn, [m for m in load_migrations() if m.version < 21])
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
            await follow_domains(conn, ["mid.ru"], "2024-06-01T00:00:00Z")
        # as the code of that time saved them (today's saving writes tables that schema lacks)
        async with transaction(conn):
            for post_id, text in ((1, "one"), (2, "two")):
                await conn.execute(
                    "INSERT INTO posts (channel_id, post_id, date, text, content_hash, first_seen_at, last_seen_at, "
                    "version_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (channel_id, post_id, f"2024-05-0{post_id}T10:00:00Z", text, text, *["2024-06-01T00:00:00Z"] * 3))
            await conn.executemany(
                "INSERT INTO links (channel_id, post_id, url, original, kind, host, ref_channel, ref_post_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(channel_id, 1, "https://mid.ru/b", "https://mid.ru/b?utm_source=tg", "text", "mid.ru", None, None),
                 (channel_id, 1, "https://mid.ru/a", "https://mid.ru/a", "hidden", "mid.ru", None, None),
                 (channel_id, 2, "https://t.me/MFARussia/1", "https://t.me/MFARussia/1", "text", "t.me",
                  "MFARussia", 1)])
            await conn.executemany("INSERT INTO pages (url, host, first_seen_at) VALUES (?, 'mid.ru', ?)",
                                   [(url, "2024-06-01T00:00:00Z") for url in ("https://mid.ru/a", "https://mid.ru/b")])
        tables = ("SELECT * FROM links ORDER BY 1, 2, 3, 4", "SELECT * FROM post_pages ORDER BY 1, 2, 3",
                  "SELECT * FROM post_feed ORDER BY 1, 2")
        before = [[tuple(r) for r in await conn.execute_fetchall(sql)] for sql in tables]

    async with open_archive(path) as conn:
        assert [[tuple(r) for r in await conn.execute_fetchall(sql)] for sql in tables] == before
        assert [len(rows) for rows in before] == [3, 2, 2]  # post 2 links a t.me post, no page
        indexes = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE tbl_name = 'links'")
        assert sorted(r[0] for r in indexes) == ["links", "links_url"]
        saved = await save(conn, channel_id, [post(3, "three", links=(Link("https://mid.ru/c", "https://mid.ru/c",
                                                                          "text", "mid.ru"),))])
        assert saved.queued_pages == 1
        assert (await conn.execute_fetchall("PRAGMA integrity_check"))[0][0] == "ok"
        assert await conn.execute_fetchall("PRAGMA foreign_key_check") == []


async def test_an_archive_with_every_version_in_post_versions_migrates_with_nothing_lost(tmp_path):
    """Migration 0016 keeps the newest version only in posts: post_versions (now a view) and
    edits show the same rows as before, and saving goes on from there."""
    from storage.sqlite.migrate import load_migrations, migrate

    path = tmp_path / "old.sqlite3"
    async with _connected(path) as conn:
        await migrate(conn, [m for m in load_migrations() if m.version < 16])
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
            for post_id, versions in ((1, 1), (2, 3)):
                await conn.execute(
                    "INSERT INTO posts (channel_id, post_id, date, text, html, content_hash, version, first_seen_at,"
                    " last_seen_at, edited) VALUES (?, ?, '2024-05-01T10:00:00Z', ?, ?, ?, ?, 'a', 'b', ?)",
                    (channel_id, post_id, f"text {post_id} v{versions}", "h", f"hash{versions}", versions,
                     int(versions > 1)))
                for version in range(1, versions + 1):
                    await conn.execute(
                        "INSERT INTO post_versions (channel_id, post_id, version, text, html, edited, seen_at,"
                        " content_hash, buttons) VALUES (?, ?, ?, ?, 'h', ?, ?, ?, NULL)",
                        (channel_id, post_id, version, f"text {post_id} v{version}", int(version > 1),
                         f"2024-06-0{version}T00:00:00Z", f"hash{version}"))
        before = [tuple(r) for r in await conn.execute_fetchall("SELECT * FROM post_versions ORDER BY 1, 2, 3")]
        edits = [tuple(r) for r in await conn.execute_fetchall("SELECT * FROM edits ORDER BY 1, 2, 4")]

    async with open_archive(path) as conn:
        assert [tuple(r) for r in await conn.execute_fetchall("SELECT * FROM post_versions ORDER BY 1, 2, 3")] == before
        assert [tuple(r) for r in await conn.execute_fetchall("SELECT * FROM edits ORDER BY 1, 2, 4")] == edits
        history = await conn.execute_fetchall("SELECT post_id, version FROM post_history ORDER BY 1, 2")
        assert [tuple(r) for r in history] == [(2, 1), (2, 2)]  # the newest versions only in posts
        saved = await save(conn, channel_id, [post(2, "text 2 v4"), post(3, "new")], at="2024-06-09T00:00:00Z")
        assert (saved.new, saved.changed) == (1, 1)
        rows_now = await conn.execute_fetchall("SELECT post_id, version, text, seen_at FROM post_versions "
                                               "WHERE post_id IN (2, 3) ORDER BY 1, 2")
        assert [tuple(r) for r in rows_now] == [
            (2, 1, "text 2 v1", "2024-06-01T00:00:00Z"), (2, 2, "text 2 v2", "2024-06-02T00:00:00Z"),
            (2, 3, "text 2 v3", "2024-06-03T00:00:00Z"), (2, 4, "text 2 v4", "2024-06-09T00:00:00Z"),
            (3, 1, "new", "2024-06-09T00:00:00Z")]


async def test_every_version_is_kept_when_a_batch_holds_a_post_twice_and_edits_know_the_one_before(db):
    from storage.alerts import get_saved_versions

    async with transaction(db):
        channel_id = await ensure_channel(db, "MFARussia", "2024-06-01T00:00:00Z")
    await save(db, channel_id, [post(7, "first")], at="2024-06-01T00:00:00Z")
    await save(db, channel_id, [post(7, "second"), post(7, "third")], at="2024-06-02T00:00:00Z")
    # a post new to the archive, twice (its first version's history row needs the post's row)
    saved_new = await save(db, channel_id, [post(8, "new"), post(8, "new, edited")], at="2024-06-02T00:00:00Z")

    versions = await db.execute_fetchall("SELECT version, text FROM post_versions WHERE post_id = 7 ORDER BY 1")
    assert [tuple(r) for r in versions] == [(1, "first"), (2, "second"), (3, "third")]
    versions = await db.execute_fetchall("SELECT version, text FROM post_versions WHERE post_id = 8 ORDER BY 1")
    assert [tuple(r) for r in versions] == [(1, "new"), (2, "new, edited")]
    assert (saved_new.new, saved_new.changed) == (1, 1)
    [saved] = await get_saved_versions(db, channel_id, [7], "2024-06-02T00:00:00Z")
    assert (saved.version, saved.text, saved.previous_text) == (3, "third", "second")
    assert await get_saved_versions(db, channel_id, [7], "2024-06-01T00:00:00Z") == []


async def test_a_post_twice_in_a_batch_keeps_the_links_of_its_last_copy_only(db):
    """A post and its edit in one batch (a live update): the links are those of the edit; a link
    the edit removed is not left behind as if the post still held it. A post the batch holds
    unchanged keeps its links."""
    old_link = Link("https://mid.ru/old", "https://mid.ru/old", "text", "mid.ru")
    new_link = Link("https://mid.ru/new", "https://mid.ru/new", "text", "mid.ru")
    async with transaction(db):
        channel_id = await ensure_channel(db, "MFARussia", "2024-06-01T00:00:00Z")
    unchanged = post(5, "archived, unchanged", links=(old_link,))
    await save(db, channel_id, [post(3, "archived", links=(old_link,)), unchanged])
    await save(db, channel_id, [post(3, "archived, edited", links=(old_link,)),
                                post(3, "archived, edited again", links=(new_link,)),
                                post(4, "new", links=(old_link,)), post(4, "new, edited", links=(new_link,)),
                                unchanged],
               at="2024-06-02T00:00:00Z")

    links = await db.execute_fetchall("SELECT post_id, url FROM links ORDER BY 1, 2")
    assert [tuple(r) for r in links] == [(3, "https://mid.ru/new"), (4, "https://mid.ru/new"),
                                         (5, "https://mid.ru/old")]  # an unchanged post keeps its links


def test_the_content_hash_of_a_post_never_changes_between_releases():
    """Archives hold hashes computed by every earlier release: a new serialization would make
    every archived post look edited on the next sync. The value was computed by the first one."""
    archived = Post(post_id=7, date="2024-05-01T10:00:00Z", text="Лавров о Хартии", html="<b>x</b>", views=5,
                    links=(Link("https://mid.ru/a", "https://mid.ru/a", "text", "mid.ru"),),
                    media=({"type": "photo", "width": 800, "url": "https://cdn/x.jpg"},),
                    link_preview={"url": "https://mid.ru/a", "title": "T"})
    assert archived.content_hash() == "6e1b8b742777348c348c9f171fd1d965ff72b8d908e69db7f1ecfef6796651be"


async def test_a_batch_longer_than_one_statement_saves_every_post_searchable(db):
    async with transaction(db):
        channel_id = await ensure_channel(db, "MFARussia", "2024-06-01T00:00:00Z")
    many = [Post(post_id=i, date=f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z", text=f"заявление номер{i}")
            for i in range(1, 121)]
    saved = await save(db, channel_id, many)
    assert saved.new == 120
    assert len(await search_posts(db, "заявление", limit=200)) == 120
    if db.engine == "sqlite":
        await db.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)")


async def test_a_post_deleted_with_sqlite3_leaves_the_search_index(tmp_path):
    path = tmp_path / "archive.sqlite3"
    async with open_archive(path) as conn:
        async with transaction(conn):
            channel_id = await ensure_channel(conn, "MFARussia", "2024-06-01T00:00:00Z")
        await save(conn, channel_id, [post(1, "Лавров о хартии"), post(2, "Лавров в Минске")])
    with sqlite3.connect(path) as raw:  # as a user pruning the archive would
        raw.execute("DELETE FROM posts WHERE post_id = 1")
    async with open_archive(path) as conn:
        hits = await search_posts(conn, '"Лавров"')
        await conn.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)")
    assert [hit.post_id for hit in hits] == [2]


async def test_runs_started_before_the_cutoff_are_deleted_oldest_first_a_chunk_at_a_time(db):
    async with transaction(db):
        for day in ("01-01", "01-02", "01-03", "01-04", "02-01", "02-02"):
            stamp = f"2026-{day}T00:00:00Z"
            run_id = await save_run_start(db, "pages" if day == "01-04" else "poll:MFARussia", stamp)
            if day != "01-04":  # that one never finished: a kill -9
                await save_run_end(db, run_id, "ok", stamp, {"new": 1})

    async with transaction(db):
        first = await delete_runs_before(db, "2026-02-01T00:00:00Z", limit=3)
    assert first == 3
    assert [tuple(r) for r in await db.execute_fetchall("SELECT min(started_at) FROM runs")] == [
        ("2026-01-04T00:00:00Z",)]
    async with transaction(db):
        rest = await delete_runs_before(db, "2026-02-01T00:00:00Z", limit=3)
        none = await delete_runs_before(db, "2026-02-01T00:00:00Z", limit=3)
    assert (rest, none) == (1, 0)
    assert [tuple(r) for r in await db.execute_fetchall("SELECT job, started_at FROM runs ORDER BY id")] == [
        ("poll:MFARussia", "2026-02-01T00:00:00Z"), ("poll:MFARussia", "2026-02-02T00:00:00Z")]
    async with transaction(db):
        assert await delete_runs_before(db, "2027-01-01T00:00:00Z") == 2  # all older: all go
