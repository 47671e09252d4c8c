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

import httpx

ROOT = Path(__file__).resolve().parents[1]


def rows(path: Path, sql: str, *params: object) -> list[tuple]:
    """All rows of ``sql`` against the archive at ``path``."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def read_only(path: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` read without writing; [] while the archive or its schema does not exist yet."""
    if not path.exists():
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
