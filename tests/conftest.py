"""Shared fixtures: a loopback t.me, config files pointing at it, migrated archives."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from tmeserver import SHARED, FakeTelegram

from monitor.config.settings import Config, load_config
from storage.db import Connection, open_archive

FAST_NETWORK = """
[network]
request_delay = "0s"
retry_backoff = "10ms"
max_retry_wait = "2s"
timeout = "2s"
max_retries = 3
"""

FAST_PAGES = """
[pages]
follow = ["mid.ru", "belta.by", "embassy.example"]
request_delay = "0s"
retry_backoff = "1s"
# Other language versions of releases are their tests' subject (test_releases.py); elsewhere
# they would only add the loopback sites' 404s to every page test's rows.
translations = false
"""


@pytest.fixture(autouse=True)
def no_name_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real resolver: names other than localhost fail here, at once.

    Tests aim at loopback addresses; a name is only ever resolved by a resolver a test passes
    in. This net catches the case where code under test (or a deliberately broken copy of it)
    would ask the system's DNS.
    """
    real = socket.getaddrinfo

    def loopback_only(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name and name != "localhost" and not _is_address(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names ({name})")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (tests/pgserver.py): the URL of its database;
    a test that asks for it skips where no server binary exists."""
    from pgserver import server_binaries, throwaway_cluster

    if server_binaries() is None and not os.environ.get("LEGATION_TEST_POSTGRES"):
        pytest.skip("no PostgreSQL server binaries (apt install postgresql)")
    with throwaway_cluster() as url:
        yield url


@pytest.fixture
def pg_url(postgres: str) -> str:
    """The session's PostgreSQL database, emptied: each test starts from nothing."""
    from pgserver import empty_database

    empty_database(postgres)
    return postgres


@pytest.fixture
def shared() -> Path:
    """The captured t.me pages in ../shared/fixtures/tme (skip where CI lacks them)."""
    if not SHARED.is_dir():
        pytest.skip(f"captured t.me fixtures not found at {SHARED}")
    return SHARED


@pytest.fixture
def tme() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


ENGINE = os.environ.get("LEGATION_TEST_ENGINE", "sqlite")  # postgresql: every test's archive on PostgreSQL
# These modules run every test on both engines (storage, capture, pages, search, alerts, evidence,
# the instruments): one suite, not a copy; a test that is about SQLite itself says so (sqlite_only).
BOTH_ENGINES = frozenset({
    "test_storage", "test_search", "test_edits_deletions", "test_backfill", "test_pages", "test_page_queue",
    "test_releases", "test_hostile_posts", "test_instruments", "test_evidence", "test_alerts", "test_media",
    "test_export", "test_reading_room",
})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only(reason): a test of SQLite itself (its files, FTS5, Datasette)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_ENGINES \
            and ENGINE == "sqlite":
        metafunc.parametrize("engine", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The engine of this test's archive."""
    chosen = getattr(request, "param", ENGINE)
    marker = request.node.get_closest_marker("sqlite_only")
    if chosen == "postgresql" and marker is not None:
        pytest.skip(f"SQLite only: {marker.args[0] if marker.args else 'a test of SQLite itself'}")
    return chosen


@pytest.fixture
def archive_location(request: pytest.FixtureRequest, tmp_path: Path, engine: str) -> str:
    """Where a test's archive lives: an SQLite file, or the session's PostgreSQL database, emptied."""
    if engine == "postgresql":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "archive.sqlite3")


@pytest.fixture
def write_config(tmp_path: Path, tme: FakeTelegram, archive_location: str) -> Callable[..., Path]:
    """Factory: a config file for ``channels`` against the loopback t.me."""

    def write(*channels: str, extra: str = "", network: str = FAST_NETWORK, pages: str = FAST_PAGES) -> Path:
        lines = [f'database = "{archive_location}"', "[telegram]", f'web_url = "{tme.url}"']
        ca = tme.write_ca(tmp_path / "test-ca.pem")
        # Every request goes through the loopback server as proxy; https sites are
        # served with certificates from a private CA that only ca_bundle trusts.
        proxied = f'proxy = "{tme.url}"\nca_bundle = "{ca}"\nallow_private_addresses = true\n'
        text = "\n".join(lines) + "\n" + network + proxied + pages + extra
        text += "".join(f'\n[[channels]]\nname = "{name}"\n' for name in channels)
        path = tmp_path / "legation.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_config(write_config: Callable[..., Path]) -> Callable[..., Config]:
    def make(*channels: str, **kwargs: str) -> Config:
        return load_config(write_config(*channels, **kwargs))

    return make


@pytest.fixture
def linking(tme: FakeTelegram, make_config: Callable[..., Config]) -> Callable[..., tuple[object, Config]]:
    """A channel whose posts link to ``urls`` (one post each), and its config."""

    def make(*urls: str, extra: str = ""):
        channel = tme.channel("MFARussia")
        for post_id, url in enumerate(urls, start=1):
            channel.add(post_id, text=f'Заявление <a href="{url}" onclick="return confirm(1)">здесь</a>')
        return channel, make_config("MFARussia", extra=extra)

    return make


@pytest.fixture
async def db(archive_location: str) -> AsyncIterator[Connection]:
    async with open_archive(archive_location) as conn:
        yield conn
