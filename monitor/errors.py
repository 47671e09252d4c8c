"""Exceptions raised by the monitor package.

    LegationError
    ├── ConfigError           a config key is missing, unknown or invalid (exit 2)
    ├── FetchError            a request failed for good
    │   ├── FetchFailed       retries exhausted: timeouts, resets, 429, 5xx
    │   ├── ResponseTooLarge  the body passed the size cap
    │   ├── UnsafeURL         not http(s), or a loopback/private/link-local host
    │   ├── CertificateUntrusted  TLS verification failed: permanent until the config changes
    │   ├── RateLimited       Telegram asked to wait (FloodWait) longer than legation sleeps
    │   ├── AccountUnavailable  the account cannot be used now (session revoked)
    │   └── AccountOffline    Telegram cannot be reached now
    ├── Stopped               the daemon is stopping; the request was abandoned (nobody's failure)
    ├── ChannelUnavailable    the channel has no public web preview, or is not a channel
    │   └── ChannelReplaced   the username now names another channel (another numeric id)
    ├── NothingArchived       a re-check was asked of a channel with no post archived
    └── UnknownChannel        a command named a channel the archive does not hold (exit 2)
"""

from __future__ import annotations

import difflib

UNKNOWN_CHANNEL_LISTED = 10  # names listed when none is close to the one asked for


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


class RateLimited(FetchError):
    """Telegram asked to wait (FloodWait) longer than legation sleeps through."""

    def __init__(self, what: str, seconds: int) -> None:
        super().__init__(what, f"Telegram asks to wait {seconds} s (FloodWait)")
        self.seconds = seconds


class Stopped(LegationError):
    """A stop was requested while a request waited or ran: not a failure of what it was for."""

    def __init__(self, what: str, reason: str = "stop requested") -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what


class ChannelUnavailable(LegationError):
    """The channel does not exist, is private, or has its web preview disabled."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"{username}: {reason}")
        self.username = username
        self.reason = reason


class ChannelReplaced(ChannelUnavailable):
    """The username serves a channel with another numeric id than the one archived under it (the
    handle was taken over after a rename): nothing of it is saved over the archived channel."""

    def __init__(self, username: str, archived_id: int, served_id: int) -> None:
        super().__init__(username, f"now serves another channel (id {served_id}; archived: id {archived_id}); "
                                   "nothing of it is saved here. If the new channel is wanted, archive it "
                                   "in another database")
        self.archived_id = archived_id
        self.served_id = served_id


class AccountUnavailable(FetchError):
    """The account cannot be used now (session revoked); the channel's round fails, others go on."""


class AccountOffline(FetchError):
    """Telegram cannot be reached now; ``auto`` channels use the web preview meanwhile."""


class NothingArchived(LegationError):
    """A re-check of a channel with nothing archived: nothing was read, and its health is unchanged."""

    def __init__(self, username: str) -> None:
        super().__init__(f"nothing archived yet, nothing to re-check; run 'legation sync {username}' first")
        self.username = username


class UnknownChannel(LegationError):
    """A command named a channel that the archive does not hold: the closest names, or all of them."""

    def __init__(self, name: str, archived: list[str]) -> None:
        close = difflib.get_close_matches(name.lower(), [a.lower() for a in archived], n=3, cutoff=0.6)
        spelled = {a.lower(): a for a in archived}
        if close:
            hint = "did you mean " + " or ".join(spelled[c] for c in close) + "?"
        elif archived:
            hint = "archived: " + ", ".join(archived[:UNKNOWN_CHANNEL_LISTED]) + (
                ", ..." if len(archived) > UNKNOWN_CHANNEL_LISTED else "")
        else:
            hint = "the archive holds no channel yet"
        super().__init__(f"no channel {name!r} in the archive; {hint}")
        self.name = name
