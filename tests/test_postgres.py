"""The archive on PostgreSQL: its schema is the SQLite archive's, and `legation copy-archive` moves an
archive between the two engines, resumably and checked, against a real PostgreSQL server
(tests/pgserver.py starts a throwaway one; the tests skip only where no server binary exists)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from helpers import ROOT, connect_archive, wait_for
from pgserver import PASSWORD, empty_database, server_binaries

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels

pytestmark = pytest.mark.skipif(server_binaries() is None and not os.environ.get("LEGATION_TEST_POSTGRES"),
                                reason="no PostgreSQL server binaries (apt install postgresql)")


def legation(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def sqlite_schema(path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    with sqlite3.connect(path) as conn:
        objects = conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')").fetchall()
        tables = {name: [r[1] for r in conn.execute(f"PRAGMA table_info({name})")] for kind, name in objects
                  if kind == "table" and "fts" not in name and name != "schema_migrations"}
        views = {name: [r[1] for r in conn.execute(f"PRAGMA table_info({name})")] for kind, name in objects
                 if kind == "view"}
    return tables, views


def postgres_schema(url) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT t.table_type, c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND c.table_name <> 'schema_migrations' "
            "ORDER BY c.table_name, c.ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    views: dict[str, list[str]] = {}
    for kind, table, column in rows:
        (views if kind == "VIEW" else tables).setdefault(table, []).append(column)
    return tables, views


async def test_postgres_has_the_same_tables_columns_and_views(pg_url, tmp_path, db):
    from storage.copy import OWN_STATE, TABLES
    from storage.postgres.connection import connect, migrate
    from storage.sqlite.migrate import load_migrations, migrations_dir

    empty_database(pg_url, schema=True)  # from nothing: every migration applies
    conn = connect(pg_url)
    try:
        applied = migrate(conn, load_migrations(migrations_dir() / "postgresql"))
        assert [m.version for m in applied] == list(range(1, len(applied) + 1))
        assert migrate(conn, load_migrations(migrations_dir() / "postgresql")) == []  # once only
    finally:
        conn.close()
    sqlite_tables, sqlite_views = sqlite_schema(tmp_path / "archive.sqlite3")
    pg_tables, pg_views = postgres_schema(pg_url)
    assert pg_tables == sqlite_tables
    assert pg_views == sqlite_views
    assert set(TABLES) == set(sqlite_tables) - set(OWN_STATE)
    with sqlite3.connect(tmp_path / "archive.sqlite3") as lite:  # references before what refers to them
        for table in TABLES:
            for reference in {row[2] for row in lite.execute(f"PRAGMA foreign_key_list({table})")}:
                assert TABLES.index(reference) < TABLES.index(table), (table, reference)


@pytest.fixture
async def archive(tme, make_config, tmp_path):
    """A captured archive with every kind of row: posts, an edit, a deletion, a release page with
    versions, a photo, alerts, runs, echoes, evidence with a time-stamp."""
    from test_evidence import with_tsa
    from test_media import MEDIA, cdn, photo
    from test_pages import CURRENT, fixture
    from tsa import TestTSA

    authority = TestTSA()
    tme.site("tsa.example").dynamic = authority.answer
    authority.write_root(tmp_path / "tsa-root.pem")
    cdn(tme)
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    ministry, embassy = tme.channel("MFARussia"), tme.channel("EmbassyUK")
    statement = ("Министерство иностранных дел Российской Федерации заявляет что Евразийская хартия "
                 "многополярного мира открыта для всех государств континента и служит основой равной "
                 "и неделимой безопасности для каждого народа без исключения и без блоков")
    ministry.add(1, text=f'{statement} <a href="{CURRENT}">здесь</a>' + photo("photo1.jpg"))
    ministry.add(2, text="Лавров о хартии")
    ministry.add(3, text="Будет удалено")
    embassy.add(1, text=statement)
    config = make_config("MFARussia", "EmbassyUK", extra=MEDIA + with_tsa(tmp_path) + (
        '\n[alerts]\nmax_age = "36500d"\n[[alerts.rules]]\nname = "charter"\nkeywords = ["хартия"]\n'))
    await archive_channels(config, ["MFARussia", "EmbassyUK"], mode="backfill")
    assert (await asyncio.to_thread(legation, "-c", str(config.source), "stamp"))[0] == 0
    ministry.add(2, text="Лавров о Евразийской хартии", edited=True)
    ministry.delete(3)
    await archive_channels(config, ["MFARussia", "EmbassyUK"], mode="recheck")
    return config


def counts(path) -> dict[str, int]:
    from storage.copy import TABLES

    with sqlite3.connect(path) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


async def test_an_archive_goes_to_postgres_and_back_the_same(archive, pg_url, tmp_path):
    before = counts(archive.database)
    assert before["post_history"] and before["post_events"] and before["page_versions"] and before["media_files"]
    assert before["echo_pairs"] and before["alerts"] and before["evidence_stamps"]
    code, output = await asyncio.to_thread(legation, "copy-archive", str(archive.database), pg_url)
    assert code == 0 and "every table the same" in output, output
    assert PASSWORD not in output

    back = tmp_path / "back.sqlite3"
    code, output = await asyncio.to_thread(legation, "copy-archive", pg_url, str(back))
    assert code == 0 and "every table the same" in output, output
    assert counts(back) == before
    with sqlite3.connect(back) as conn:  # the echo tables came with the posts: nothing left to index
        last = conn.execute("SELECT max(rowid) FROM posts").fetchone()[0]
        assert conn.execute("SELECT done_to, up_to FROM echo_backlog").fetchall() == [(last, last)]
    # the copy is the archive: its evidence chain and time-stamps verify, its search finds the same
    config = tmp_path / "back.toml"
    config.write_text(archive.source.read_text(encoding="utf-8").replace(str(archive.database), str(back)),
                      encoding="utf-8")
    code, output = await asyncio.to_thread(legation, "-c", str(config), "verify")
    assert code == 0 and "intact" in output and "time-stamps: 1" in output, output
    found = [await asyncio.to_thread(legation, "-c", str(c), "search", "хартия") for c in (archive.source, config)]
    assert found[0] == found[1] and found[0][0] == 0 and "MFARussia" in found[0][1]


async def test_a_changed_row_is_found_by_the_check(archive, pg_url):
    import psycopg

    assert (await asyncio.to_thread(legation, "copy-archive", str(archive.database), pg_url))[0] == 0
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE posts SET text = text || '!' WHERE post_id = 2")
    # a second copy resumes (nothing left to copy) and checks again
    code, output = await asyncio.to_thread(legation, "copy-archive", str(archive.database), pg_url)
    assert code == 1 and "1 table(s) differ: posts" in output, output


async def test_a_destination_holding_another_archive_is_refused(archive, pg_url, tmp_path, tme, make_config):
    assert (await asyncio.to_thread(legation, "copy-archive", str(archive.database), pg_url))[0] == 0
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(archive.database) as source, sqlite3.connect(other) as copy:
        source.backup(copy)
    code, output = await asyncio.to_thread(legation, "copy-archive", str(other), pg_url)
    assert code == 1 and "already holds an archive" in output, output


def test_a_wrong_password_is_a_clear_error_without_it(postgres):
    wrong = postgres.replace(PASSWORD, "not-the-password")
    code, output = legation("copy-archive", str(ROOT / "README.md"), wrong)  # the source is checked later
    assert code == 2 and "no such archive" not in output or code == 1
    code, output = legation("copy-archive", wrong, "/tmp/never-written.sqlite3")
    assert code == 1 and "cannot connect to postgresql://legation:***@127.0.0.1" in output, output
    assert "not-the-password" not in output and "authentication failed" in output


def _generated_archive(path, posts: int) -> None:
    """``posts`` posts saved through storage, as a capture saves them."""
    from storage.channels import ensure_channel
    from storage.db import open_archive, transaction
    from storage.models import Post
    from storage.posts import save_posts

    async def fill() -> None:
        async with open_archive(path) as conn:
            async with transaction(conn):
                channel_id = await ensure_channel(conn, "MFARussia", "2024-01-01T00:00:00Z")
            for start in range(1, posts + 1, 500):
                batch = [Post(post_id=i, date=f"2024-05-{1 + i % 28:02d}T10:00:00Z", text=f"Заявление номер {i}",
                              html=f"Заявление номер {i}") for i in range(start, min(start + 500, posts + 1))]
                async with transaction(conn):
                    await save_posts(conn, channel_id, batch, "2024-06-01T00:00:00Z")

    asyncio.run(fill())


def test_a_copy_killed_mid_way_resumes_without_gaps_or_duplicates(postgres, tmp_path):
    import psycopg

    empty_database(postgres)
    source = tmp_path / "big.sqlite3"
    _generated_archive(source, 6_000)
    command = [sys.executable, "-m", "monitor", "copy-archive", str(source), postgres, "--batch", "50"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def copied_some_posts() -> bool:
        try:
            with psycopg.connect(postgres) as conn:
                row = conn.execute("SELECT rows FROM archive_copies WHERE table_name = 'posts'").fetchone()
        except psycopg.Error:
            return False
        return bool(row and 0 < row[0] < 6_000)

    try:
        wait_for(copied_some_posts, 60)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    with psycopg.connect(postgres) as conn:
        partial = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    assert 0 < partial < 6_000
    started = time.monotonic()
    code, output = legation("copy-archive", str(source), postgres, "--batch", "500")
    assert code == 0 and "every table the same" in output, output
    with psycopg.connect(postgres) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT post_id), min(post_id), max(post_id) "
                            "FROM posts").fetchone() == (6_000, 6_000, 1, 6_000)
    assert time.monotonic() - started < 60


def test_a_postgresql_database_is_checked_and_its_password_never_shown(tmp_path, postgres):
    config = tmp_path / "legation.toml"
    config.write_text('database = "postgresql://team:hunter2-pw@db.example"\n', encoding="utf-8")
    code, output = legation("-c", str(config), "status")
    assert code == 2 and "database: a postgresql:// URL needs its database" in output, output
    assert "hunter2-pw" not in output
    config.write_text(f'database = "{postgres.replace(PASSWORD, "hunter2-pw")}"\n', encoding="utf-8")
    code, output = legation("-c", str(config), "status")
    assert code == 1 and "cannot connect to postgresql://legation:***@127.0.0.1" in output, output
    assert "hunter2-pw" not in output


async def test_the_readmes_queries_run_on_postgresql_with_the_same_rows(tme, make_config, pg_url):
    """Each README query, or its PostgreSQL form, on a copy of the archive: rows, and where the
    query is the same on both, the same rows (in the query's order)."""
    import psycopg
    from test_readme import POSTGRES_QUERIES, any_date, readme_archive

    config = await readme_archive(tme, make_config)
    assert (await asyncio.to_thread(legation, "copy-archive", str(config.database), pg_url))[0] == 0
    failures = []
    with psycopg.connect(pg_url) as conn, connect_archive(config.database) as lite:
        for sqlite_sql, postgres_sql in POSTGRES_QUERIES:
            try:
                rows = conn.execute(any_date(postgres_sql)).fetchall()
            except psycopg.Error as exc:
                conn.rollback()
                failures.append(f"{postgres_sql.splitlines()[0]}: {exc}")
                continue
            if not rows:
                failures.append(f"{postgres_sql.splitlines()[0]}: no rows")
            elif sqlite_sql == postgres_sql and "ORDER BY" in sqlite_sql:
                expected = [tuple(row) for row in lite.execute(any_date(sqlite_sql)).fetchall()]
                if [tuple(row) for row in rows] != expected:
                    failures.append(f"{sqlite_sql.splitlines()[0]}: other rows than SQLite's")
    assert not failures, "\n".join(failures)
    assert len(POSTGRES_QUERIES) >= 14 and sum(a != b for a, b in POSTGRES_QUERIES) >= 4


@pytest.mark.parametrize(("text", "search", "found"), [
    ("Заявление о Евразийской хартии", "хартия", True),  # Russian word forms
    ("Lavrov on the Eurasian charters", "charter", True),  # English
    ("Die Verträgen der Vereinten Nationen", "Vertrag", True),  # German
    ("Всё сказано", "все", True),  # ё read as е
    ("Заявление о Евразийской хартии", "хартия -Евразийская", False),  # -word, as a search box
    ("Заявление о Евразийской хартии", '"хартии Евразийской"', False),  # a phrase keeps its order
])
def test_postgresql_search_finds_word_forms_in_three_languages(pg_url, text, search, found):
    import psycopg

    from storage.postgres.connection import migrate
    from storage.sqlite.migrate import load_migrations, migrations_dir

    with psycopg.connect(pg_url) as conn:
        migrate(conn, load_migrations(migrations_dir() / "postgresql"))
        assert conn.execute("SELECT archive_words(%s) @@ archive_query(%s)", (text, search)).fetchone()[0] is found


def test_sslmode_and_a_ca_file_are_honoured(tmp_path):
    """verify-full against the server's CA connects; against another CA it is refused, clearly."""
    import trustme
    from pgserver import throwaway_cluster

    authority, stranger = trustme.CA(), trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "db-ca.pem"))
    stranger.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    with throwaway_cluster(tls=authority) as url:
        config = tmp_path / "legation.toml"
        for ca, expected in (("db-ca.pem", 0), ("other-ca.pem", 1)):
            config.write_text(f'database = "{url}?sslmode=verify-full&sslrootcert={tmp_path / ca}"\n'
                              '[[channels]]\nname = "MFARussia"\n', encoding="utf-8")
            code, output = legation("-c", str(config), "status")
            assert PASSWORD not in output
            if expected == 0:
                assert "archive: postgresql://legation:***@127.0.0.1" in output and "never synced" in output, output
                assert code == 1  # the channel was never synced: a health check's exit
            else:
                assert code == 1 and "cannot connect to" in output and "certificate verify failed" in output, output
