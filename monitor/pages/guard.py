"""Which URLs may be fetched: http(s) only, and never loopback, private or link-local hosts."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from monitor.errors import UnsafeURL


def check_address(address: str) -> None:
    """Refuse an IP address that is not on the public internet."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        raise UnsafeURL(address, "not a public address (loopback, private, link-local or multicast)")


async def check_url(url: str, *, allow_private: bool = False, proxied: bool = False) -> None:
    """Raise :class:`UnsafeURL` unless ``url`` is http(s) on a public host.

    Names are resolved and every address checked, so a name that points inside the
    network is refused too. Behind a proxy the proxy resolves names, so only literal
    addresses and ``localhost`` can be checked here.
    """
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
    if allow_private:
        return
    try:
        check_address(host)
        return
    except ValueError:
        pass  # a name, not an address
    except UnsafeURL:
        raise UnsafeURL(url, f"{host} is not a public address") from None
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL(url, f"{host} is loopback")
    if proxied:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeURL(url, f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        try:
            check_address(str(info[4][0]))
        except UnsafeURL:
            raise UnsafeURL(url, f"{host} resolves to {info[4][0]}, not a public address") from None
