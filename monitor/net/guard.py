"""Which URLs may be fetched and which addresses connected to: http(s), followed domains, public addresses.

One policy, applied twice:

* :meth:`AddressGuard.check_url` runs before every request, redirects included: the scheme,
  the followed domains, literal addresses in every spelling resolvers accept (``2130706433``,
  ``127.1``, ``0x7f.0.0.1``, ``017700000001``), ``localhost`` names, and, without a proxy,
  what the name resolves to (an early, clear error).
* :class:`GuardedBackend` runs at connect time, without a proxy: it resolves the name once,
  checks every address, and connects to the address it checked, so that a second DNS answer
  (rebinding) cannot send the connection elsewhere. TLS still verifies the name.

Behind a proxy the proxy resolves names: literal addresses are still refused in any spelling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore

from monitor.errors import UnsafeURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
RESOLVE_TIMEOUT = 30.0
# One part of an IPv4 address as inet_aton reads it: hex, octal (leading 0) or decimal.
INET_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$", re.I)


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(ip: IPAddress) -> bool:
    """On the public internet: not loopback, private, link-local, reserved or multicast."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_localhost(name: str) -> bool:
    """``localhost`` and its subdomains: loopback by definition (RFC 6761), whatever DNS says."""
    return name == "localhost" or name.endswith(".localhost")


def parse_address(host: str) -> IPAddress | None:
    """``host`` as the address a resolver would take it for, or None for a name.

    IPv6 literals, and IPv4 in inet_aton's forms: one to four parts, each decimal, octal
    (leading 0) or hex (0x), the last filling the remaining bytes.
    """
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(INET_PART.match(part) for part in parts):
        return None
    values = [int(p[2:] or "0", 16) if p.lower().startswith("0x") else int(p, 8) if len(p) > 1 and p[0] == "0"
              else int(p) for p in parts]
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for value in head:
        number = number * 256 + value
    return ipaddress.IPv4Address(number * 256 ** (4 - len(head)) + last)


@dataclass(frozen=True, slots=True)
class AddressGuard:
    """The fetch policy of one client; ``resolve`` and ``public`` are parameters so that tests can
    stand a resolver in for DNS and aim at loopback listeners."""

    allow_private: bool = False
    proxied: bool = False
    follows: Callable[[str], bool] | None = None  # redirects and requests stay on these domains
    resolve: Resolver = system_resolve
    public: Callable[[IPAddress], bool] = field(default=is_public)

    async def check_url(self, url: str) -> None:
        """Raise :class:`UnsafeURL` unless ``url`` may be requested."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # "http://[" and friends
            raise UnsafeURL(url, f"not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise UnsafeURL(url, f"only http and https are fetched, not {parts.scheme or 'a relative URL'}")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise UnsafeURL(url, "no host")
        literal = parse_address(host) is not None or is_localhost(host)
        if literal and not self.allow_private:
            self.check_addresses(url, host, [host])
        if self.follows is not None and not self.follows(host):
            raise UnsafeURL(url, f"{host} is not a followed domain ([pages] follow); redirects stay within them")
        if not literal and not self.allow_private and not self.proxied:
            self.check_addresses(url, host, await self._resolve(url, host, port or 443))

    async def addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and check every address; the ones to connect to."""
        literal = parse_address(host)
        found = [str(literal)] if literal is not None else await self._resolve(host, host, port)
        if not self.allow_private:
            self.check_addresses(host, host, found)
        return found

    def check_addresses(self, url: str, host: str, addresses: Iterable[str]) -> None:
        for address in addresses:
            ip = None if is_localhost(address) else parse_address(address)
            if ip is None or not self.public(ip):
                shown = host if address == host else f"{host} resolves to {address}, which"
                raise UnsafeURL(url, f"{shown} is not a public address (loopback, private, link-local or multicast)")

    async def _resolve(self, url: str, host: str, port: int) -> list[str]:
        try:
            found = await asyncio.wait_for(self.resolve(host, port), RESOLVE_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise UnsafeURL(url, f"cannot resolve {host}: {exc or 'timed out'}") from None
        if not found:
            raise UnsafeURL(url, f"cannot resolve {host}: no address")
        return found

    def backend(self) -> httpcore.AsyncNetworkBackend | None:
        """The connect-time guard of direct connections, where one is needed (private addresses
        not allowed); a client behind a proxy uses it for the hosts it reaches directly."""
        return None if self.allow_private else GuardedBackend(self)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that connects only to addresses the guard checked."""

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await self.guard.addresses(host, port):
            try:
                return await self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL(path, "unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def check_url(url: str, *, allow_private: bool = False, proxied: bool = False) -> None:
    """:meth:`AddressGuard.check_url` with the system resolver and no domain list."""
    await AddressGuard(allow_private=allow_private, proxied=proxied).check_url(url)
