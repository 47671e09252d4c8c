"""Exceptions raised by the monitor package.

    LegationError
    ├── ConfigError           a config key is missing, unknown or invalid (exit 2)
    ├── FetchError            a request failed for good
    │   ├── FetchFailed       retries exhausted: timeouts, resets, 429, 5xx
    │   ├── ResponseTooLarge  the body passed the size cap
    │   ├── UnsafeURL         not http(s), or a loopback/private/link-local host
    │   ├── CertificateUntrusted  TLS verification failed: permanent until the config changes
    │   └── Stopped           the daemon is stopping; the request was abandoned
    └── ChannelUnavailable    the channel has no public web preview
"""

from __future__ import annotations


class LegationError(Exception):
    """Base class of every error raised by :mod:`monitor`."""


class ConfigError(LegationError):
    """A configuration problem, naming the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class FetchError(LegationError):
    """A request did not give a usable answer."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class FetchFailed(FetchError):
    """Every attempt failed (timeouts, connection errors, 429 or 5xx answers)."""


class ResponseTooLarge(FetchError):
    """The response body was larger than the configured cap."""


class UnsafeURL(FetchError):
    """legation will not fetch this URL (scheme, or a host inside the network)."""


class CertificateUntrusted(FetchError):
    """The server's certificate does not verify against the trust store and ``ca_bundle``.

    Not transient: retrying cannot help until ``[network] ca_bundle`` changes.
    """

    def __init__(self, url: str, host: str, detail: str) -> None:
        super().__init__(url, f"certificate of {host} not trusted ({detail}): set [network] ca_bundle "
                              "(see README, mid.ru's certificate)")
        self.host = host


class Stopped(FetchError):
    """A stop was requested while the request waited or ran."""


class ChannelUnavailable(LegationError):
    """The channel does not exist, is private, or has its web preview disabled."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"{username}: {reason}")
        self.username = username
        self.reason = reason
