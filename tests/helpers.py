"""Reading a test's archive (the rows a query returns, also while another process writes it),
and looking at it as a reader does (`legation browse`, headless Chromium)."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def rows(path: Path | str, sql: str, *params: object) -> list[tuple]:
    """All rows of ``sql`` (SQLite's SQL) against the archive at ``path``, an SQLite file or a
    PostgreSQL URL (the statement as legation's own PostgreSQL connection rewrites it)."""
    with connect_archive(path) as conn:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def posts_matching(path: Path | str, word: str) -> list[tuple]:
    """The texts of the posts the engine's full-text index finds ``word`` in, oldest first."""
    if str(path).startswith("postgresql://"):
        return rows(path, "SELECT text FROM posts WHERE search_words(text) @@ to_tsquery('simple', lower(?)) "
                          "ORDER BY date, post_id", word)
    return rows(path, "SELECT text FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rowid", word)


def pages_matching(path: Path | str, word: str) -> list[tuple]:
    """The URLs of the pages the engine's full-text index finds ``word`` in."""
    if str(path).startswith("postgresql://"):
        return rows(path, "SELECT url FROM pages WHERE search_words(coalesce(title, '') || ' ' || coalesce(text, '')) "
                          "@@ to_tsquery('simple', lower(?)) ORDER BY url", word)
    return rows(path, "SELECT url FROM pages_fts JOIN pages ON pages.rowid = pages_fts.rowid WHERE pages_fts MATCH ? "
                      "ORDER BY url", word)


def delete_archive(path: Path | str) -> None:
    """The archive gone: its file deleted, or its PostgreSQL database emptied of everything."""
    if str(path).startswith("postgresql://"):
        from pgserver import empty_database

        empty_database(str(path), schema=True)
    else:
        Path(path).unlink()


def drop_guard(conn: Any, table: str) -> None:
    """Drop the trigger that keeps ``table`` append-only, as someone tampering would."""
    if isinstance(conn, _PostgresArchive):
        conn.db.execute_native(f"DROP TRIGGER {table}_no_update ON {table}")
    else:
        conn.execute(f"DROP TRIGGER {table}_no_update")


def connect_archive(path: Path | str) -> Any:
    """A DB-API connection to a test's archive, used as ``with ... as conn: conn.execute(...)``:
    sqlite3's, or legation's PostgreSQL one (storage/postgres/db.py) for a postgresql:// URL."""
    if str(path).startswith("postgresql://"):
        return _PostgresArchive(str(path))
    return sqlite3.connect(path)


class _PostgresArchive:
    def __init__(self, url: str) -> None:
        import psycopg

        from storage.postgres.db import PostgresDb

        self._raw = psycopg.connect(url, autocommit=True)
        self.db = PostgresDb(self._raw)

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        return self.db.executemany(sql, rows)

    def __enter__(self) -> _PostgresArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._raw.close()

    def close(self) -> None:
        self._raw.close()


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def read_only(path: Path | str, sql: str) -> list[tuple]:
    """Rows of ``sql`` read without writing; [] while the archive or its schema does not exist yet."""
    if str(path).startswith("postgresql://"):
        try:
            return rows(path, sql)
        except Exception:  # noqa: BLE001 - not there yet, as a file not created yet
            return []
    if not Path(path).exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def start_browse(config: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    """`legation browse` on a free loopback port, once it answers: (process, base URL, port).

    The caller stops it (and may check that Datasette goes with it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "browse", "--port", str(port)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return process, url, port
        except httpx.TransportError:
            assert time.monotonic() < deadline and process.poll() is None, "datasette did not start"
            time.sleep(0.2)


def chromium() -> str | None:
    """The system's Chromium, if any (.ci/run installs Debian's)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def rendered_dom(browser: str, url: str) -> str:
    """The document headless Chromium renders for ``url`` (scripts run), with no background traffic."""
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--disable-background-networking", "--disable-component-update", "--no-first-run",
                           "--disable-sync", "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
