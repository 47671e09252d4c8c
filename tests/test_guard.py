"""Nobody in: the address guard under DNS rebinding, odd spellings of addresses behind a proxy,
redirects off the followed domains, and compression bombs. Every target is a loopback listener
started here; a resolver stands in for DNS, so no name ever reaches a real resolver."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import rows

from monitor.config.settings import NetworkConfig
from monitor.daemon.service import archive_channels
from monitor.errors import UnsafeURL
from monitor.net.client import HttpClient
from monitor.net.guard import AddressGuard, check_url, parse_address

FAST = NetworkConfig(request_delay=0.0, retry_backoff=0.01, max_retry_wait=1.0, timeout=2.0, max_retries=0)
ROOT = Path(__file__).resolve().parents[1]


class Listener:
    """An HTTP server on one loopback address that records every request it gets."""

    def __init__(self, host: str, port: int = 0, body: bytes = b"<html>site</html>") -> None:
        self.seen: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                listener.seen.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site_and_internal() -> Iterator[tuple[Listener, Listener]]:
    """A "public" site on 127.0.0.2 and an "internal" service on 127.0.0.1, on the same port."""
    for _ in range(20):
        site = Listener("127.0.0.2", body=b"<html>public site</html>")
        try:
            internal = Listener("127.0.0.1", site.port, body=b"<html>internal secrets</html>")
        except OSError:
            site.close()
            continue
        yield site, internal
        site.close()
        internal.close()
        return
    pytest.skip("no free port on both 127.0.0.1 and 127.0.0.2")


def rebinding(answers: list[str]):
    """A resolver that answers ``answers`` in turn (the last one from then on), like a TTL-0 name."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return [answers[min(len(calls), len(answers)) - 1]]

    return resolve, calls


def only_127_0_0_2(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The guard's policy with 127.0.0.2 standing for the public internet."""
    return str(ip) == "127.0.0.2"


async def test_the_connection_goes_to_the_address_that_was_checked(site_and_internal):
    site, internal = site_and_internal
    # the check sees 127.0.0.2; any later answer would be 127.0.0.1
    resolve, calls = rebinding(["127.0.0.2", "127.0.0.2", "127.0.0.1"])
    guard = AddressGuard(resolve=resolve, public=only_127_0_0_2)
    async with HttpClient(FAST, guard=guard) as http:
        response = await http.get(f"http://rebind.example:{site.port}/robots.txt")

    assert response.content == b"<html>public site</html>"
    assert (site.seen, internal.seen) == (["/robots.txt"], [])
    assert calls == ["rebind.example", "rebind.example"]  # the request check, then the connection's own


async def test_a_name_that_rebinds_to_loopback_is_refused_at_connect(site_and_internal):
    site, internal = site_and_internal
    resolve, _ = rebinding(["127.0.0.2", "127.0.0.1"])  # public when checked, loopback when connecting
    guard = AddressGuard(resolve=resolve, public=only_127_0_0_2)
    async with HttpClient(FAST, guard=guard) as http:
        with pytest.raises(UnsafeURL, match="rebind.example resolves to 127.0.0.1, which is not a public address"):
            await http.get(f"http://rebind.example:{site.port}/page")
    assert (site.seen, internal.seen) == ([], [])


@pytest.mark.parametrize(("spelling", "address"), [
    ("2130706433", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"), ("2852039166", "169.254.169.254"), ("0251.0376.0251.0376", "169.254.169.254"),
    ("10.1", "10.0.0.1"), ("0", "0.0.0.0"),
])
async def test_every_spelling_of_an_inside_address_is_refused_behind_a_proxy(spelling, address):
    assert str(parse_address(spelling)) == address
    with pytest.raises(UnsafeURL, match="is not a public address"):
        await check_url(f"http://{spelling}/latest/meta-data/", proxied=True)


@pytest.mark.parametrize("name", ["mid.ru", "1.example", "0x7g.0.0.1", "256.1.1.1.1", "08.1", "example.com."])
def test_names_are_not_addresses(name):
    assert parse_address(name) is None


async def test_redirects_to_odd_spellings_never_reach_the_proxy(tme, make_config):
    site = tme.site("mid.ru")
    for number, target in enumerate(["http://2130706433/", "http://0x7f.0.0.1/", "http://2852039166/latest/"]):
        site.page(f"/r{number}/", b"", status=302, Location=target)
    channel = tme.channel("MFARussia")
    for number in range(3):
        channel.add(number + 1, text=f'<a href="https://mid.ru/r{number}/">x</a>')
    config = make_config("MFARussia")  # every request goes through the loopback server as a proxy
    config = replace(config, network=replace(config.network, allow_private_addresses=False))

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"failed": 3}
    assert [r for r in tme.requests if r.startswith("//") and "mid.ru" not in r] == []
    errors = [e for (e,) in rows(config.database, "SELECT error FROM pages ORDER BY url")]
    assert all("is not a public address" in e for e in errors), errors


async def test_a_redirect_off_the_followed_domains_is_not_fetched(tme, make_config):
    tme.site("mid.ru").page("/moved/", b"", status=301, Location="https://other.example/article/")
    tme.site("other.example").page("/article/", b"<html><body><p>" + b"text " * 100 + b"</p></body></html>")
    tme.channel("MFARussia").add(1, text='<a href="https://mid.ru/moved/">x</a>')
    config = make_config("MFARussia")

    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT status, error FROM pages") == [
        ("failed", "https://other.example/article/: other.example is not a followed domain ([pages] follow); "
                   "redirects stay within them")]
    assert tme.site_requests("other.example") == []


def gzip(data_chunks, times: int = 1) -> bytes:
    for _ in range(times):
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        data = b"".join(packer.compress(chunk) for chunk in data_chunks) + packer.flush()
        data_chunks = [data]
    return data


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """1 GiB of zeros, gzipped twice: a couple of kilobytes on the wire."""
    return gzip((bytes(1 << 20) for _ in range(1024)), times=2)


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip,gzip"])
def test_a_compression_bomb_is_refused_in_little_memory(tme, bomb, encoding, tmp_path):
    assert len(bomb) < 16_384
    tme.site("mid.ru").page("/bomb/", bomb, **{"Content-Encoding": encoding})
    ca = tme.write_ca(tmp_path / "ca.pem")
    script = textwrap.dedent(f"""
        import asyncio
        from monitor.config.settings import NetworkConfig
        from monitor.errors import ResponseTooLarge
        from monitor.net.client import HttpClient
        async def main():
            config = NetworkConfig(proxy={tme.url!r}, ca_bundle={str(ca)!r}, max_retries=0, request_delay=0,
                                   timeout=20, max_response_size=10 * 1024 * 1024)
            async with HttpClient(config) as http:
                try:
                    await http.get("https://mid.ru/bomb/")
                except ResponseTooLarge as exc:
                    print("refused:", exc.reason)
        asyncio.run(main())
        # VmHWM, not ru_maxrss: that counts the memory of the test process this one was forked from
        peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
        print("peak_mb:", int(peak) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = dict(line.split(": ", 1) for line in done.stdout.splitlines() if line.startswith(("refused:", "peak_mb:")))
    assert out["refused"] == "body exceeds 10485760 bytes (decoded)", done.stderr
    assert int(out["peak_mb"]) < 150


async def test_a_decoded_body_is_capped_as_it_is_produced(tme, tmp_path):
    page = b"<html>" + b"x" * 50_000 + b"</html>"
    tme.site("mid.ru").page("/ok/", gzip([page], times=2), **{"Content-Encoding": "gzip, gzip"})
    tme.site("mid.ru").page("/big/", gzip([page * 3]), **{"Content-Encoding": "gzip"})
    ca = tme.write_ca(tmp_path / "ca.pem")
    config = NetworkConfig(proxy=tme.url, ca_bundle=ca, max_retries=0, request_delay=0, max_response_size=100_000)
    async with HttpClient(config) as http:
        assert (await http.get("https://mid.ru/ok/")).content == page
        with pytest.raises(Exception, match=r"body exceeds 100000 bytes \(decoded\)"):
            await http.get("https://mid.ru/big/")


async def test_a_layer_past_the_cap_is_refused_never_cut_short():
    import os

    from monitor.net.body import BodyTooLarge, read_body

    async def chunks(data: bytes):
        for start in range(0, len(data), 100):
            yield data[start:start + 100]

    payload = os.urandom(1000)  # incompressible: the inner gzip is larger than what it holds
    twice = gzip([payload], times=2)
    assert await read_body(chunks(twice), "gzip, gzip", 2000) == payload
    with pytest.raises(BodyTooLarge):
        await read_body(chunks(twice), "gzip, gzip", 1005)


@pytest.mark.parametrize("address", ["100.64.0.1", "100.100.100.200", "100.127.255.254", "::ffff:100.64.0.9"])
def test_the_shared_address_space_is_not_public(address):
    """100.64.0.0/10 (RFC 6598), where some clouds keep their metadata services (100.100.100.200)."""
    import ipaddress

    from monitor.net.guard import is_public
    assert not is_public(ipaddress.ip_address(address))
    assert is_public(ipaddress.ip_address("100.128.0.1"))  # just past it: public
