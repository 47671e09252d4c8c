"""Checking config values: each checker takes (key, value) and returns a typed value or raises
:class:`ConfigError` naming the key."""

from __future__ import annotations

import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import MISSING, field, fields
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.log import mask_credentials

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
# Telegram usernames: a letter, then letters, digits and underscores; 4 to 32 long.
USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

T = TypeVar("T")
R = TypeVar("R")
MAX_DURATION = 100 * 365 * 86400.0  # a century: anything longer is a typo, and overflows dates
MAX_WHOLE = 2**63 - 1  # what SQLite and every limit here can hold


def setting(default: Any = None, check: Callable[[str, Any], Any] | None = None, *, env: str | None = None,
            path: bool | Callable[[str, Path], Path] = False, section: type | None = None,
            factory: Callable[[], Any] | None = None) -> Any:
    """A config key declared once, on its record: its default, and the checker its value passes.

    ``env``: a variable read when the key is absent or empty. ``path``: taken relative to the
    config file's directory (a callable checks the resolved path). ``section``: a table
    parsed into that record. A field declared without ``setting`` is not a key of the file.
    """
    metadata = {"check": check, "env": env, "path": path, "section": section}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def keys_of(record: type) -> set[str]:
    """The keys a table of ``record`` may hold."""
    return {f.name for f in fields(record) if f.metadata.get("check") or f.metadata.get("section")}


def parse_record(record: type[R], section: Section, base: Path, **given: Any) -> R:
    """``record`` from a table: each key through its checker, absent keys at their default."""
    values = dict(given)
    for f in fields(cast(Any, record)):
        if f.name in given:
            continue
        meta, key = f.metadata, section.key(f.name)
        if meta.get("section"):
            child = Section.child(section.table, f.name, keys_of(meta["section"]), key)
            values[f.name] = parse_record(meta["section"], child, base)
            continue
        if not meta.get("check"):
            continue
        raw = section.table.get(f.name)
        env = meta.get("env")
        if raw in (None, "") and env and os.environ.get(env):
            value = meta["check"](env, os.environ[env])
        elif f.name in section.table:
            value = meta["check"](key, raw)
        elif f.default is MISSING:
            continue  # a default_factory's value: the record makes it
        else:
            value = f.default
        if isinstance(value, list):
            value = tuple(value)
        if meta.get("path") and not (isinstance(value, str) and "://" in value):  # a URL is not a path
            value = None if value in (None, "") else base / value
            if value is not None and callable(meta["path"]):
                value = meta["path"](key, value)
        values[f.name] = value
    return record(**values)


class Section:
    """One table of the document: unknown keys are errors; values pass through checkers."""

    def __init__(self, prefix: str, table: Mapping[str, Any], known: set[str]) -> None:
        self.prefix, self.table = prefix, table
        for key in table:
            if key not in known:
                raise ConfigError(self.key(key), f"unknown key (known: {', '.join(sorted(known))})")

    @classmethod
    def child(cls, raw: Mapping[str, Any], name: str, known: set[str], key: str | None = None) -> Section:
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(key or name, "must be a table, e.g. [" + (key or name) + "]")
        return cls(key or name, table, known)

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def get(self, name: str, check: Callable[[str, Any], T], default: T) -> T:
        if name not in self.table:
            return default
        return check(self.key(name), self.table[name])


def as_domain(key: str, value: Any) -> str:
    domain = as_string(key, value).strip().lower().rstrip(".")
    if not DOMAIN.match(domain):
        raise ConfigError(key, f"{value!r} is not a domain like \"mid.ru\" (no scheme, no path)")
    return domain


def as_domains(key: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(key, 'expected a list of domains, e.g. ["mid.ru", "eng.belta.by"]')
    return [as_domain(f"{key}[{i}]", item) for i, item in enumerate(value)]


def as_duration_or_never(key: str, value: Any) -> float | None:
    """``"never"`` (None) or a positive duration."""
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return as_positive_duration(key, value)


def as_strings(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(key, "expected a non-empty list of strings")
    items = [as_string(f"{key}[{i}]", v).strip() for i, v in enumerate(value)]
    if not all(items):
        raise ConfigError(key, "empty strings are not allowed")
    return items


def as_string_list(key: str, value: Any) -> list[str]:
    """Like :func:`as_strings`, but an empty list is fine."""
    return [] if value == [] else as_strings(key, value)


def compile_pattern(pattern: str) -> Any:
    """An alert rule's regular expression, case-insensitive, in RE2: matching takes time linear
    in the text whatever the pattern (no backtracking, so no pattern and text can freeze the
    daemon). RE2 refuses backreferences and look-arounds; ``re2.error`` says why."""
    import re2

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the reason reaches the user in the config error, not on stderr
    return re2.compile(pattern, options)


def as_patterns(key: str, value: Any) -> list[str]:
    import re2

    patterns = as_strings(key, value)
    for i, pattern in enumerate(patterns):
        try:
            compile_pattern(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise ConfigError(f"{key}[{i}]", f"invalid regular expression {pattern!r}: {reason} (alert rules use "
                                             "RE2 syntax: no backreferences or look-arounds)") from None
    return patterns


# t.me/NAME, t.me/s/NAME, a post's link t.me/NAME/123, with or without scheme, query or fragment
TELEGRAM_LINK = re.compile(r"^(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/(?:s/)?([^/?#]+)",
                           re.IGNORECASE)


def normalise_channel_name(value: str) -> str:
    """``@MFARussia``, ``https://t.me/s/MFARussia`` and a post's link ``https://t.me/MFARussia/22958``
    all mean ``MFARussia``."""
    value = value.strip()
    link = TELEGRAM_LINK.match(value)
    if link:
        return link[1]
    return value.removeprefix("@")


def as_channel_name(key: str, value: Any) -> str:
    name = normalise_channel_name(as_string(key, value))
    if not USERNAME.match(name):
        raise ConfigError(
            key, f"{value!r} is not a public channel username (letters, digits, _; 4 to 32 long)"
        )
    return name


def parse_duration(text: str) -> float:
    """``"500ms"``, ``"2s"``, ``"5m"``, ``"1h"``, ``"1d"`` in seconds; ValueError otherwise."""
    match = DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like \"500ms\", \"2s\", \"5m\", \"1h\"")
    return float(match[1]) * DURATION_UNITS[match[2]]


# Checkers: (key, value) -> typed value, raising ConfigError that names the key.


def as_string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {type(value).__name__}")
    return expand_env(key, value)


def expand_env(key: str, value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise ConfigError(key, f"environment variable {name} is not set")
        return os.environ[name]

    return ENV_REFERENCE.sub(replace, value)


def as_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}")
    return value


def as_count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WHOLE:
        raise ConfigError(key, f"expected a whole number from 0 to {MAX_WHOLE}, got {value!r}")
    return value


def count_up_to(most: int) -> Callable[[str, Any], int]:
    """A whole number from 0 to ``most`` (a retry count past that only keeps a failure waiting)."""
    def check(key: str, value: Any) -> int:
        count = as_count(key, value)
        if count > most:
            raise ConfigError(key, f"expected at most {most}, got {value!r}")
        return count
    return check


def duration_at_least(least: float, example: str) -> Callable[[str, Any], float]:
    """A duration of at least ``least`` seconds."""
    def check(key: str, value: Any) -> float:
        seconds = as_duration(key, value)
        if seconds < least:
            raise ConfigError(key, f"{value!r} is too short: at least {example}")
        return seconds
    return check


def directory(key: str, path: Path) -> Path:
    """A directory legation creates and writes to: it must not be a file (nor anything else) already."""
    if path.exists() and not path.is_dir():
        raise ConfigError(key, f"{path} exists and is not a directory")
    return path


def as_positive_int(key: str, value: Any) -> int:
    if as_count(key, value) == 0:
        raise ConfigError(key, "must be greater than 0")
    return int(value)


def as_duration(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration like \"2s\", got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(as_string(key, value))
        except ValueError as exc:
            raise ConfigError(key, str(exc)) from None
    if not math.isfinite(seconds):
        raise ConfigError(key, f"expected a finite duration like \"2s\", got {value!r}")
    if seconds < 0:
        raise ConfigError(key, "must not be negative")
    if seconds > MAX_DURATION:
        raise ConfigError(key, f"{value!r} is too long (at most 100 years)")
    return seconds


def as_positive_duration(key: str, value: Any) -> float:
    seconds = as_duration(key, value)
    if seconds == 0:
        raise ConfigError(key, "must be greater than 0")
    return seconds


def as_http_url(key: str, value: Any) -> str:
    url = as_string(key, value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"expected an http(s) URL such as https://t.me, got {mask_credentials(str(value))!r}")
    return url


def as_proxy_url(key: str, value: Any) -> str | None:
    url = as_string(key, value).strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        _ = parts.hostname
    except ValueError:
        raise ConfigError(key, "not a valid proxy URL (an unbalanced [ in the host?)") from None
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise ConfigError(
            key, "expected a proxy URL such as socks5://127.0.0.1:1080 or http://proxy:3128 "
            f"(schemes: {', '.join(PROXY_SCHEMES)})"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(key, "the proxy port is not a number") from None
    return url


def one_of(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        text = as_string(key, value).lower()
        if text not in options:
            raise ConfigError(key, f"expected one of {', '.join(options)}, got {value!r}")
        return text

    return check


def existing_file(key: str, path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(key, f"file not found: {path}")
    return path


def pem_certificates(key: str, path: Path) -> Path:
    """A file of PEM certificates that OpenSSL can load as trust anchors."""
    existing_file(key, path)
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(key, f"{path} is not a PEM certificate file ({exc}); convert a DER .cer with "
                               "'openssl x509 -inform der -in FILE.cer -out FILE.pem'") from None
    return path


def as_optional_string(key: str, value: Any) -> str | None:
    """A string; empty means not set."""
    return as_string(key, value) or None


def as_notify_urls(key: str, urls: list[str]) -> list[str]:
    """Notification URLs that Apprise can load, checked now rather than at the first alert.

    The error names the key, the position and the scheme only: the rest of a URL holds tokens.
    """
    if not urls:
        return urls
    import apprise  # imported only when notifications are configured

    for index, url in enumerate(urls):
        with apprise.LogCapture(level=apprise.logging.ERROR):  # Apprise's messages quote the whole URL
            loaded = apprise.Apprise().add(url)
        if not loaded:
            scheme = url.split("://", 1)[0] if "://" in url else ""
            what = f"scheme {scheme + '://'!r} is not a service Apprise knows, or the URL is incomplete" if scheme \
                else "not a notification URL (expected service://..., see the Apprise documentation)"
            raise ConfigError(f"{key}[{index}]", f"{what}; the URL is not shown because it may hold a token")
    return urls


def as_host_port(key: str, value: Any) -> str:
    """``host:port`` (an IPv6 address in brackets): a server to connect to."""
    text = as_string(key, value).strip()
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path or parts.query or "@" in text:
        raise ConfigError(key, f"expected host:port such as \"149.154.167.40:443\", got {mask_credentials(text)!r}")
    return text


def rsa_public_key_file(key: str, path: Path) -> Path:
    """A PEM file holding an RSA public key (PKCS#1 "RSA PUBLIC KEY" or "PUBLIC KEY")."""
    import rsa  # Telethon's own dependency

    data = existing_file(key, path).read_bytes()
    for load in (rsa.PublicKey.load_pkcs1, rsa.PublicKey.load_pkcs1_openssl_pem):
        try:
            load(data)
            return path
        except Exception:  # noqa: BLE001, S112 - the next form is tried; none fits: the error below
            continue
    raise ConfigError(key, f"{path} is not an RSA public key in PEM form (-----BEGIN RSA PUBLIC KEY-----)")
