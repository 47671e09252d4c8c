"""The browser fetcher: a release page behind a JavaScript wall, archived through a real
headless Chromium whose every request goes through legation's own HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import structlog.testing
from helpers import rows
from tmeserver import FIXTURES

from monitor.daemon.service import archive_channels
from monitor.errors import ConfigError

pytest.importorskip("playwright", reason="the browser fetcher needs Playwright: pip install 'legation[browser]'")
CHROMIUM = next((path for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(path)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs it)")
ROOT = Path(__file__).resolve().parents[1]
RELEASE = "/ru/foreign_policy/news/1984500/"
BROWSER_PAGES = f"""
[pages]
follow = ["mid.ru"]
request_delay = "0s"
retry_backoff = "1s"
translations = false
browser = "chromium"
browser_path = "{CHROMIUM}"
browser_timeout = "30s"
"""
WALL = """<html><head><script>window["bobcmn"] = "0102";</script>
<script src="/TSPD/08abc.js"></script></head><body>Please wait...{extra}</body></html>"""
# The challenge: a script from the wall's own path sets the pass and reloads, as F5's TSPD does.
CHALLENGE = b"""document.cookie = "TSPD_101=pass; path=/"; setTimeout(function () { location.reload(); }, 50);"""


def walled_site(tme, extra: str = ""):
    release = (FIXTURES / "sites" / "midru_current.html").read_bytes()
    seen: list[dict[str, str]] = []

    def answer(method: str, path: str, headers: dict[str, str], body: bytes):
        seen.append({"path": path, "cookie": headers.get("cookie", "")})
        if path.startswith("/TSPD/"):
            return 200, {"Content-Type": "application/javascript"}, CHALLENGE
        if path == RELEASE and "TSPD_101=pass" in headers.get("cookie", ""):
            return 200, {"Content-Type": "text/html; charset=utf-8"}, release
        if path == RELEASE:
            return 200, {"Content-Type": "text/html; charset=utf-8", "Set-Cookie": "TS01=first; Path=/"}, \
                WALL.format(extra=extra).encode()
        return None

    site = tme.site("mid.ru")
    site.dynamic = answer
    site.page("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    channel = tme.channel("MFARussia")
    channel.add(1, text=f'Заявление <a href="https://mid.ru{RELEASE}">здесь</a>')
    return seen


# Chromium inherits the environment through Playwright's driver, and keeps it if orphaned: the
# marker tells this run's browsers from those of anything else on the machine (another test run).
RUN_MARKER = f"LEGATION_TEST_RUN={os.getpid()}".encode()
os.environ["LEGATION_TEST_RUN"] = str(os.getpid())


def chromium_processes() -> set[int]:
    """This test run's Chromium processes, running or orphaned."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (b"chromium" in (entry / "cmdline").read_bytes().split(b"\0")[0]
                        and RUN_MARKER in (entry / "environ").read_bytes().split(b"\0")):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


async def test_a_walled_release_page_is_archived_through_the_browser(tme, make_config):
    seen = walled_site(tme)
    config = make_config("MFARussia", pages=BROWSER_PAGES)
    before = chromium_processes()

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages is not None and report.pages.fetched == {"ok": 1}
    [(status, fetched_with, title)] = rows(config.database, "SELECT status, fetched_with, title FROM pages")
    assert (status, fetched_with) == ("ok", "browser") and "Евразийской хартии" in title
    assert rows(config.database, "SELECT fetched_with FROM page_versions") == [("browser",)]
    # The challenge ran in Chromium, and each of its requests went through legation's client:
    # the wall's script was fetched through the proxy, and the reload carried both cookies.
    assert "/TSPD/08abc.js" in tme.site_requests("mid.ru")
    last = [s for s in seen if s["path"] == RELEASE][-1]
    assert "TSPD_101=pass" in last["cookie"] and "TS01=first" in last["cookie"]
    assert chromium_processes() <= before  # closed with the command, none left running


async def test_without_the_browser_a_wall_is_blocked_and_retried(tme, make_config):
    walled_site(tme)
    config = make_config("MFARussia")

    await archive_channels(config, ["MFARussia"], mode="sync")

    [(status, error)] = rows(config.database, "SELECT status, error FROM pages")
    assert status == "blocked" and "F5/Shape challenge" in error
    from click.testing import CliRunner

    from monitor.cli.main import cli
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "status"])
    shown = result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert 'pages behind a JavaScript wall: set [pages] browser = "chromium"' in shown


async def test_requests_the_page_makes_inside_the_network_are_refused_before_they_leave(tme, make_config):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    contacted = []

    def watch() -> None:
        while not done.is_set():
            try:
                contacted.append(listener.accept())
            except TimeoutError:
                continue

    done = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # fetch() and <img> are routed through legation's client, whose guard refuses them; a WebSocket is
    # not routed (Playwright cannot), and Chromium's own network goes only to a closed proxy port.
    probes = (f'<script>fetch("http://127.0.0.1:{port}/steal"); fetch("http://0x7f000001:{port}/hex");'
              f'fetch("http://2130706433:{port}/decimal"); try {{ new WebSocket("ws://127.0.0.1:{port}/ws"); }}'
              f' catch (e) {{}}</script><img src="http://127.0.0.1:{port}/pixel.png">')
    walled_site(tme, extra=probes)
    config = make_config("MFARussia", pages=BROWSER_PAGES)
    config = dataclasses.replace(config, network=dataclasses.replace(config.network, allow_private_addresses=False))
    try:
        with structlog.testing.capture_logs() as events:
            await archive_channels(config, ["MFARussia"], mode="sync")
    finally:
        done.set()
        watcher.join()
        listener.close()

    assert contacted == []  # neither Chromium nor legation's client reached the address
    refused = sorted(e["url"].rsplit("/", 1)[-1] for e in events if e["event"] == "browser_request_refused")
    assert refused == ["decimal", "hex", "steal"]  # the image was never asked for: images are skipped
    assert rows(config.database, "SELECT status, fetched_with FROM pages") == [("ok", "browser")]


async def test_a_wall_that_never_lifts_is_blocked_within_the_time_limit(tme, make_config):
    walled_site(tme)
    tme.site("mid.ru").dynamic = lambda method, path, headers, body: (
        200, {"Content-Type": "text/html"}, WALL.format(extra="").encode()) if path == RELEASE else (
        200, {"Content-Type": "application/javascript"}, b"/* no pass today */")
    config = make_config("MFARussia", pages=BROWSER_PAGES.replace('browser_timeout = "30s"', 'browser_timeout = "3s"'))

    await archive_channels(config, ["MFARussia"], mode="sync")

    [(status, error)] = rows(config.database, "SELECT status, error FROM pages")
    assert status == "blocked" and "still up after 3 s in the browser" in error


def test_the_browser_setting_fails_at_start_up_when_it_cannot_work(tmp_path, monkeypatch):
    from monitor.config.settings import parse_config

    with pytest.raises(ConfigError) as caught:
        parse_config({"pages": {"browser": "chromium", "browser_path": str(tmp_path / "nope")}}, base=tmp_path)
    assert caught.value.key == "pages.browser_path" and "not an executable file" in caught.value.reason
    with pytest.raises(ConfigError) as caught:
        parse_config({"pages": {"browser": "firefox"}}, base=tmp_path)
    assert caught.value.key == "pages.browser"
    config = tmp_path / "legation.toml"
    config.write_text('[pages]\nbrowser = "chromium"\nbrowser_path = "/nonexistent/chromium"\n')
    done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), "sync"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "legation: config error: pages.browser_path: /nonexistent/chromium is not an executable file"]


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_chromium_is_left_running_when_the_daemon_goes(tme, write_config, how):
    import signal
    import time

    walled_site(tme)
    tme.site("mid.ru").dynamic = lambda method, path, headers, body: (
        200, {"Content-Type": "text/html"}, WALL.format(extra="").encode()) if path == RELEASE else (
        200, {"Content-Type": "application/javascript"}, b"/* the wall stays up: the browser is busy */")
    config = write_config("MFARussia", pages=BROWSER_PAGES, extra='[schedule]\npages_interval = "1s"\n')
    before = chromium_processes()
    daemon = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "--log-format", "json", "run"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not chromium_processes() - before:
            assert time.monotonic() < deadline and daemon.poll() is None, "the browser never started"
            time.sleep(0.2)
        daemon.send_signal(getattr(signal, how))
        daemon.wait(timeout=30)
        deadline = time.monotonic() + 15
        while chromium_processes() - before:
            assert time.monotonic() < deadline, f"Chromium left running after {how}"
            time.sleep(0.2)
    finally:
        if daemon.poll() is None:
            daemon.kill()


async def test_a_browser_that_died_is_started_again_with_a_fresh_profile(tme, make_config):
    import signal
    import time

    from monitor.daemon.service import pages_client
    from monitor.net.client import HttpClient
    from monitor.pages.browser import BrowserFetcher

    walled_site(tme)
    config = make_config("MFARussia", pages=BROWSER_PAGES)
    before = chromium_processes()
    async with pages_client(config) as http:
        assert isinstance(http, HttpClient)
        async with BrowserFetcher(http, config.pages) as browser:
            first = await browser.fetch(f"https://mid.ru{RELEASE}")
            started = chromium_processes() - before
            profiles = {arg for pid in started for arg in _cmdline(pid) if arg.startswith("--user-data-dir=")}
            assert profiles and all("/tmp" in p or "playwright" in p for p in profiles)  # not the user's
            for pid in started:  # Chromium dies under the daemon
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while chromium_processes() & started:  # the event loop does not run meanwhile: Playwright
                assert time.monotonic() < deadline  # has not heard of the death, the browser still counts
                time.sleep(0.1)  # as connected (in the daemon, while its driver has not told it yet)
            second = await browser.fetch(f"https://mid.ru{RELEASE}")
        assert "Евразийской хартии" in first.text and "Евразийской хартии" in second.text
    assert not (chromium_processes() - before)
    for directory in profiles:  # the temporary profiles are gone with their browsers
        assert not Path(directory.split("=", 1)[1]).exists()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


async def test_webrtc_on_a_walled_page_sends_nothing_around_the_proxy(tme, make_config):
    """A wall's script opens an RTCPeerConnection with a STUN server on a loopback UDP listener:
    ICE would send its binding requests straight from Chromium, past our client and the guard."""
    stun = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stun.bind(("127.0.0.1", 0))
    stun.settimeout(0.1)
    port = stun.getsockname()[1]
    packets: list[bytes] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                packets.append(stun.recvfrom(2048)[0])

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    probe = ('<script>try { const pc = new RTCPeerConnection({iceServers: [{urls: "stun:127.0.0.1:' + str(port)
             + '"}]}); pc.createDataChannel("x"); pc.createOffer().then(o => pc.setLocalDescription(o)); }'
             ' catch (e) { document.title = "no webrtc"; }</script>')
    walled_site(tme, extra=probe)
    answer = tme.site("mid.ru").dynamic
    slow = CHALLENGE.replace(b"50)", b"3000)")  # time enough for ICE to gather before the reload

    def slower(method: str, path: str, headers: dict[str, str], body: bytes):
        if path.startswith("/TSPD/"):
            return 200, {"Content-Type": "application/javascript"}, slow
        return answer(method, path, headers, body)

    tme.site("mid.ru").dynamic = slower
    config = make_config("MFARussia", pages=BROWSER_PAGES)
    try:
        await archive_channels(config, ["MFARussia"], mode="sync")
        await asyncio.sleep(1.0)
    finally:
        done.set()
        listener.join()
        stun.close()

    assert rows(config.database, "SELECT status, fetched_with FROM pages") == [("ok", "browser")]
    assert packets == []
