"""The HTTP client over loopback: proxy, extra CA bundle, size cap, timeouts, politeness, stop."""

from __future__ import annotations

import asyncio
import importlib.machinery
import socket
import ssl
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from monitor.config.settings import NetworkConfig
from monitor.errors import CertificateUntrusted, FetchFailed, ResponseTooLarge, Stopped
from monitor.net.client import HttpClient, retry_after

FAST = dict(request_delay=0.0, retry_backoff=0.01, max_retry_wait=1.0, timeout=2.0, max_retries=2)


def client(**overrides) -> HttpClient:
    return HttpClient(NetworkConfig(**(FAST | overrides)))


class ForwardProxy:
    """A plain HTTP forward proxy on loopback that records what it carried."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                proxy.seen.append(self.path)
                direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with direct.open(self.path, timeout=5) as upstream:
                    body = upstream.read()
                    self.send_response(upstream.status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_every_request_goes_through_the_configured_proxy(tme):
    tme.channel("via_proxy").add(1)
    proxy = ForwardProxy()
    try:
        async with client(proxy=proxy.url) as http:
            response = await http.get(f"{tme.url}/s/via_proxy")
    finally:
        proxy.close()
    assert response.status == 200 and b"via_proxy/1" in response.content
    assert proxy.seen == [f"{tme.url}/s/via_proxy"]


async def test_a_request_after_the_first_searches_for_no_module(tme, monkeypatch):
    """httpcore imports sniffio on every connection and lock: installed (a dependency), that is a
    dictionary look-up; missing, a search of sys.path per request (encode/httpcore#1103)."""
    tme.channel("imports").add(1)
    searched: list[str] = []
    find_spec = importlib.machinery.PathFinder.find_spec

    def recorded(name, path=None, target=None):
        searched.append(name)
        return find_spec(name, path, target)

    async with client() as http:
        await http.get(f"{tme.url}/s/imports")  # the first one imports what it needs
        monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", recorded)
        for _ in range(5):
            assert (await http.get(f"{tme.url}/s/imports")).status == 200
    assert searched == []


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server whose certificate chains to a CA no trust store knows."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    bundle = tmp_path / "extra-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    yield f"https://127.0.0.1:{server.server_address[1]}/", bundle
    server.shutdown()
    server.server_close()


async def test_ca_bundle_adds_trust_for_a_private_ca(tls_server):
    url, bundle = tls_server
    async with client(max_retries=3) as http:  # not transient: never retried
        with pytest.raises(CertificateUntrusted, match=r"certificate of 127\.0\.0\.1 not trusted \(.*certificate.*\): "
                                                        r"set \[network\] ca_bundle"):
            await http.get(url)
        assert (http.stats.requests, http.stats.retries) == (1, 0)
    async with client(ca_bundle=bundle) as http:
        response = await http.get(url)
    assert (response.status, response.content) == (200, b"ok")


async def test_a_body_over_the_cap_is_refused_without_retry(tme):
    channel = tme.channel("huge_page")
    for post_id in range(1, 21):
        channel.add(post_id)
    async with client(max_response_size=4096) as http:
        with pytest.raises(ResponseTooLarge, match="Content-Length 2[0-9]{4} exceeds 4096 bytes"):
            await http.get(f"{tme.url}/s/huge_page")
    assert len(tme.requests) == 1


async def test_a_stalled_answer_times_out_and_is_retried(tme):
    tme.channel("slow_channel").add(1)
    tme.fail_next(200, stall=1.0)
    async with client(timeout=0.2) as http:
        response = await http.get(f"{tme.url}/s/slow_channel")
    assert response.status == 200
    assert len(tme.requests) == 2 and http.stats.retries == 1


async def test_retries_are_bounded(tme):
    tme.fail_next(503, count=10)
    async with client(max_retries=2) as http:
        with pytest.raises(FetchFailed, match=r"HTTP 503 \(after 3 attempts\)"):
            await http.get(f"{tme.url}/s/anything")
    assert len(tme.requests) == 3


async def test_a_refused_connection_is_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    async with client(max_retries=1) as http:
        with pytest.raises(FetchFailed, match="ConnectError"):
            await http.get(f"http://127.0.0.1:{port}/")
    assert http.stats.requests == 2


async def test_requests_to_one_host_keep_the_delay(tme):
    tme.channel("polite").add(1)
    stamps: list[float] = []
    original = tme.respond

    def stamp(path: str):
        stamps.append(time.monotonic())
        return original(path)

    tme.respond = stamp  # type: ignore[method-assign]
    async with client(request_delay=0.3) as http:
        for _ in range(3):
            await http.get(f"{tme.url}/s/polite")
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.29


async def test_a_stop_wakes_a_long_wait():
    async with client() as http:
        waiting = asyncio.create_task(http.sleep(3600))
        await asyncio.sleep(0.1)  # the wait has begun ...
        assert not waiting.done()
        started = asyncio.get_running_loop().time()
        http.stop.set()  # ... when the stop comes
        with pytest.raises(Stopped, match="stop requested"):
            await asyncio.wait_for(waiting, timeout=5)
        assert asyncio.get_running_loop().time() - started < 1


def test_retry_after_forms():
    now = datetime(2024, 5, 14, 16, 0, 0, tzinfo=UTC)
    assert retry_after("120") == 120
    assert retry_after("Tue, 14 May 2024 16:00:30 GMT", now) == 30
    assert retry_after("Tue, 14 May 2024 15:00:00 GMT", now) == 0
    assert retry_after("soon") is None and retry_after(None) is None


async def test_a_trickling_answer_ends_at_the_timeout_not_when_the_server_stops():
    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):  # a byte every 0.1 s: no single read ever waits long
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        started = time.monotonic()
        async with client(timeout=0.5, max_retries=0) as http:
            with pytest.raises(FetchFailed, match=r"no complete answer within 0\.5 s"):
                await http.get(f"http://127.0.0.1:{server.server_address[1]}/")
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
        server.server_close()


async def test_retry_after_is_capped_by_max_retry_wait_and_zero_means_at_once(tme):
    tme.channel("busy").add(1)
    tme.fail_next(429, headers={"Retry-After": "3600"})
    async with client(max_retry_wait=0.5, retry_backoff=5.0) as http:
        started = time.monotonic()
        assert (await http.get(f"{tme.url}/s/busy")).status == 200
        assert time.monotonic() - started < 2  # an hour asked, half a second waited
    tme.fail_next(429, headers={"Retry-After": "0"})
    async with client(max_retry_wait=5.0, retry_backoff=5.0) as http:
        started = time.monotonic()
        assert (await http.get(f"{tme.url}/s/busy")).status == 200
        assert time.monotonic() - started < 2  # "0" is at once, not the cap nor the back-off
