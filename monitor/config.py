"""TOML configuration, validated at start-up into frozen records."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from monitor import __version__
from monitor.errors import ConfigError

DEFAULT_DATABASE = "legation.sqlite3"
DEFAULT_CHANNEL = "MFARussia"
DEFAULT_CONFIG_FILE = "legation.toml"
DEFAULT_WEB_URL = "https://t.me"
DEFAULT_USER_AGENT = f"legation/{__version__} (Telegram channel archiver)"
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "console", "json")

# Telegram usernames: a letter, then letters, digits and underscores; 4 to 32 long.
USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    web_url: str = DEFAULT_WEB_URL
    api_id: int | None = None  # account mode: from my.telegram.org, or LEGATION_API_ID
    api_hash: str | None = None  # or LEGATION_API_HASH; never logged
    session: Path = Path("legation")  # Telethon writes <session>.session, mode 0600
    max_flood_sleep: float = 60.0  # longer FloodWaits move an "auto" channel to the web preview
    media_dir: Path = Path("media")  # where download_media channels' files go
    max_media_size: int = 20 * 1024 * 1024

    @property
    def account_configured(self) -> bool:
        return self.api_id is not None and bool(self.api_hash)


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    proxy: str | None = None
    ca_bundle: Path | None = None
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 30.0
    request_delay: float = 2.0
    max_retries: int = 5
    retry_backoff: float = 2.0
    max_retry_wait: float = 600.0
    max_response_size: int = 10 * 1024 * 1024
    allow_private_addresses: bool = False


@dataclass(frozen=True, slots=True)
class SyncConfig:
    recheck_posts: int = 100
    recheck_age: float = 7 * 86400.0
    max_confirmations: int = 50


EXTRACTORS = ("midru", "belta", "generic")
DEFAULT_EXTRACTORS = {"mid.ru": "midru", "belta.by": "belta"}
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True, slots=True)
class PagesConfig:
    follow: tuple[str, ...] = ("mid.ru",)
    extractors: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_EXTRACTORS))
    request_delay: float = 5.0
    max_per_round: int = 30
    retry_backoff: float = 600.0
    max_retry_wait: float = 86400.0
    max_attempts: int = 8
    refetch_after: float | None = None
    attachments: bool = True
    robots_ttl: float = 86400.0

    def extractor_for(self, host: str) -> str:
        """The extractor named for ``host`` or its closest configured parent domain."""
        for domain in _parents(host):
            if domain in self.extractors:
                return self.extractors[domain]
        return "generic"

    def follows(self, host: str) -> bool:
        return any(domain in self.follow for domain in _parents(host))


def _parents(host: str) -> list[str]:
    labels = host.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


ALERT_SCOPES = ("posts", "edits", "deletions", "pages")
STEM_LANGUAGES = {"ru": "russian", "de": "german", "en": "english", "fr": "french", "es": "spanish",
                  "it": "italian", "pt": "portuguese", "nl": "dutch", "uk": "ukrainian", "pl": "polish",
                  "tr": "turkish", "sv": "swedish", "fi": "finnish", "ar": "arabic"}


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    keywords: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # empty: every channel
    scope: tuple[str, ...] = ALERT_SCOPES
    language: str | None = None  # Snowball stemming for keywords and text
    whole_words: bool = True  # False: a keyword matches the start of a word
    every_change: bool = False  # edits: alert on every matching version, not only new matches
    notify: tuple[str, ...] = ()  # empty: [alerts] notify
    digest: float | None = None  # collect this rule's alerts into one message per period


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    notify: tuple[str, ...] = ()
    rules: tuple[AlertRule, ...] = ()
    max_age: float = 2 * 86400.0
    deliver_interval: float = 30.0
    retry_backoff: float = 60.0
    max_retry_wait: float = 3600.0
    max_attempts: int = 10
    unhealthy_after: float = 3600.0


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    format: str = "auto"


CHANNEL_SOURCES = ("web", "account", "auto")


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str
    backfill: bool = True
    source: str = "auto"  # auto: the account when logged in, else the web preview
    download_media: bool = False  # account mode: save photos and documents to [telegram] media_dir
    poll_interval: float | None = None  # None: [schedule] poll_interval
    stale_after: float | None = None  # None: [schedule] stale_after


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    poll_interval: float = 300.0
    pages_interval: float = 60.0
    recheck_interval: float = 86400.0
    recheck_age: float = 30 * 86400.0
    stale_after: float = 2 * 86400.0
    failing_after: float = 3600.0
    shutdown_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Config:
    database: Path = Path(DEFAULT_DATABASE)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    pages: PagesConfig = field(default_factory=PagesConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    channels: tuple[ChannelConfig, ...] = (ChannelConfig(DEFAULT_CHANNEL),)
    source: Path | None = None

    def secrets(self) -> list[str]:
        """What must never be logged: the API hash, proxy credentials, notification URLs and their tokens."""
        found = [self.telegram.api_hash or ""]
        if self.network.proxy:
            found.append(urlsplit(self.network.proxy).password or "")
        for url in [*self.alerts.notify, *(u for rule in self.alerts.rules for u in rule.notify)]:
            parts = urlsplit(url)
            found += [url, parts.netloc, parts.password or ""]
            found += [segment for segment in parts.path.split("/") if len(segment) >= 8]
        return [value for value in found if value]

    def poll_interval(self, channel: ChannelConfig) -> float:
        return channel.poll_interval or self.schedule.poll_interval

    def stale_after(self, channel: ChannelConfig) -> float:
        return channel.stale_after or self.schedule.stale_after

    def channel_names(self, wanted: tuple[str, ...] = ()) -> list[str]:
        """The configured channels, or those of ``wanted`` (which must be configured)."""
        names = [c.name for c in self.channels]
        if not wanted:
            return names
        by_key = {n.lower(): n for n in names}
        unknown = [w for w in wanted if normalise_channel_name(w).lower() not in by_key]
        if unknown:
            raise ConfigError("channels", f"not configured: {', '.join(unknown)}")
        return [by_key[normalise_channel_name(w).lower()] for w in wanted]


def load_config(path: str | Path | None) -> Config:
    """Read ``path``; with none, ``./legation.toml`` if present, else the built-in defaults."""
    if path is None:
        if not Path(DEFAULT_CONFIG_FILE).exists():
            return Config()
        path = DEFAULT_CONFIG_FILE
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    return parse_config(raw, base=path.resolve().parent, source=path)


def parse_config(raw: Mapping[str, Any], *, base: Path, source: Path | None = None) -> Config:
    """Validate a parsed TOML document; relative paths are taken from ``base``."""
    top = _Section("", raw, {"database", "telegram", "network", "sync", "pages", "schedule", "alerts", "log", "channels"})
    channels = _parse_channels(raw.get("channels"))
    return Config(
        database=base / top.get("database", _string, DEFAULT_DATABASE),
        telegram=_parse_telegram(_Section.child(raw, "telegram", set(TelegramConfig.__slots__)), base),
        network=_parse_network(_Section.child(raw, "network", set(NetworkConfig.__slots__)), base),
        sync=_parse_sync(_Section.child(raw, "sync", set(SyncConfig.__slots__))),
        pages=_parse_pages(_Section.child(raw, "pages", set(PagesConfig.__slots__))),
        schedule=_parse_schedule(_Section.child(raw, "schedule", set(ScheduleConfig.__slots__))),
        alerts=_parse_alerts(_Section.child(raw, "alerts", set(AlertsConfig.__slots__))),
        log=_parse_log(_Section.child(raw, "log", {"level", "format"})),
        channels=channels,
        source=source,
    )


class _Section:
    """One table of the document: unknown keys are errors; values pass through checkers."""

    def __init__(self, prefix: str, table: Mapping[str, Any], known: set[str]) -> None:
        self.prefix, self.table = prefix, table
        for key in table:
            if key not in known:
                raise ConfigError(self.key(key), f"unknown key (known: {', '.join(sorted(known))})")

    @classmethod
    def child(cls, raw: Mapping[str, Any], name: str, known: set[str]) -> _Section:
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(name, "must be a table, e.g. [" + name + "]")
        return cls(name, table, known)

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def get(self, name: str, check: Callable[[str, Any], T], default: T) -> T:
        if name not in self.table:
            return default
        return check(self.key(name), self.table[name])


def _parse_telegram(section: _Section, base: Path) -> TelegramConfig:
    api_id = section.get("api_id", _api_id, None) or _api_id("LEGATION_API_ID", os.environ.get("LEGATION_API_ID"))
    api_hash = section.get("api_hash", _string, "") or os.environ.get("LEGATION_API_HASH", "")
    return TelegramConfig(
        web_url=section.get("web_url", _http_url, DEFAULT_WEB_URL),
        api_id=api_id,
        api_hash=api_hash or None,
        session=base / section.get("session", _string, "legation"),
        max_flood_sleep=section.get("max_flood_sleep", _duration, 60.0),
        media_dir=base / section.get("media_dir", _string, "media"),
        max_media_size=section.get("max_media_size", _positive_int, 20 * 1024 * 1024),
    )


def _api_id(key: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = _expand_env(key, value).strip()
        if not value.isdigit():
            raise ConfigError(key, "expected the numeric api_id from my.telegram.org")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, "expected the numeric api_id from my.telegram.org")
    return value


def _parse_network(section: _Section, base: Path) -> NetworkConfig:
    d = NetworkConfig()
    ca_bundle = section.get("ca_bundle", _string, "")
    return NetworkConfig(
        proxy=section.get("proxy", _proxy_url, None),
        ca_bundle=_existing_file("network.ca_bundle", base / ca_bundle) if ca_bundle else None,
        user_agent=section.get("user_agent", _string, d.user_agent),
        timeout=section.get("timeout", _positive_duration, d.timeout),
        request_delay=section.get("request_delay", _duration, d.request_delay),
        max_retries=section.get("max_retries", _count, d.max_retries),
        retry_backoff=section.get("retry_backoff", _duration, d.retry_backoff),
        max_retry_wait=section.get("max_retry_wait", _duration, d.max_retry_wait),
        max_response_size=section.get("max_response_size", _positive_int, d.max_response_size),
        allow_private_addresses=section.get("allow_private_addresses", _bool, False),
    )


def _parse_sync(section: _Section) -> SyncConfig:
    d = SyncConfig()
    return SyncConfig(
        recheck_posts=section.get("recheck_posts", _count, d.recheck_posts),
        recheck_age=section.get("recheck_age", _duration, d.recheck_age),
        max_confirmations=section.get("max_confirmations", _count, d.max_confirmations),
    )


def _parse_pages(section: _Section) -> PagesConfig:
    d = PagesConfig()
    refetch = section.get("refetch_after", _string_or_duration, None)
    extractors = dict(DEFAULT_EXTRACTORS)
    extractors.update(section.get("extractors", _extractor_map, dict[str, str]()))
    return PagesConfig(
        follow=tuple(section.get("follow", _domains, list(d.follow))),
        extractors=extractors,
        request_delay=section.get("request_delay", _duration, d.request_delay),
        max_per_round=section.get("max_per_round", _count, d.max_per_round),
        retry_backoff=section.get("retry_backoff", _positive_duration, d.retry_backoff),
        max_retry_wait=section.get("max_retry_wait", _duration, d.max_retry_wait),
        max_attempts=section.get("max_attempts", _positive_int, d.max_attempts),
        refetch_after=refetch,
        attachments=section.get("attachments", _bool, d.attachments),
        robots_ttl=section.get("robots_ttl", _duration, d.robots_ttl),
    )


def _domain(key: str, value: Any) -> str:
    domain = _string(key, value).strip().lower().rstrip(".")
    if not DOMAIN.match(domain):
        raise ConfigError(key, f"{value!r} is not a domain like \"mid.ru\" (no scheme, no path)")
    return domain


def _domains(key: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(key, 'expected a list of domains, e.g. ["mid.ru", "eng.belta.by"]')
    return [_domain(f"{key}[{i}]", item) for i, item in enumerate(value)]


def _extractor_map(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, 'expected a table of domain = extractor, e.g. { "mid.ru" = "midru" }')
    check = _choice(EXTRACTORS)
    return {_domain(f"{key}.{d}", d): check(f"{key}.{d}", e) for d, e in value.items()}


def _string_or_duration(key: str, value: Any) -> float | None:
    """``"never"`` (None) or a positive duration."""
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return _positive_duration(key, value)


def _parse_schedule(section: _Section) -> ScheduleConfig:
    d = ScheduleConfig()
    return ScheduleConfig(**{
        name: section.get(name, _positive_duration, getattr(d, name)) for name in ScheduleConfig.__slots__
    })


def _parse_alerts(section: _Section) -> AlertsConfig:
    d = AlertsConfig()
    rules_raw = section.table.get("rules", [])
    if not isinstance(rules_raw, list):
        raise ConfigError("alerts.rules", "must be an array of tables: [[alerts.rules]]")
    rules = tuple(_parse_rule(i, table) for i, table in enumerate(rules_raw))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError("alerts.rules", f"rule names must be unique: {sorted(names)}")
    return AlertsConfig(
        notify=tuple(section.get("notify", _string_list, list[str]())),
        rules=rules,
        max_age=section.get("max_age", _duration, d.max_age),
        deliver_interval=section.get("deliver_interval", _positive_duration, d.deliver_interval),
        retry_backoff=section.get("retry_backoff", _positive_duration, d.retry_backoff),
        max_retry_wait=section.get("max_retry_wait", _duration, d.max_retry_wait),
        max_attempts=section.get("max_attempts", _positive_int, d.max_attempts),
        unhealthy_after=section.get("unhealthy_after", _positive_duration, d.unhealthy_after),
    )


def _parse_rule(index: int, table: Any) -> AlertRule:
    if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"].strip():
        raise ConfigError(f"alerts.rules[{index}].name", "every rule needs a name")
    name = table["name"].strip()
    section = _Section(f"alerts.rules[{name}]", table, set(AlertRule.__slots__))
    keywords = tuple(section.get("keywords", _strings, list[str]()))
    regex = tuple(section.get("regex", _patterns, list[str]()))
    if not keywords and not regex:
        raise ConfigError(section.key("keywords"), "a rule needs keywords, regex, or both")
    digest = section.get("digest", _string_or_duration, None)
    return AlertRule(
        name=name,
        keywords=keywords,
        regex=regex,
        exclude=tuple(section.get("exclude", _strings, list[str]())),
        channels=tuple(_channel_name(section.key("channels"), c) for c in section.get("channels", _strings, list[str]())),
        scope=tuple(section.get("scope", _scopes, list(ALERT_SCOPES))),
        language=section.get("language", _choice(tuple(STEM_LANGUAGES)), None),
        whole_words=section.get("whole_words", _bool, True),
        every_change=section.get("every_change", _bool, False),
        notify=tuple(section.get("notify", _strings, list[str]())),
        digest=digest,
    )


def _strings(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(key, "expected a non-empty list of strings")
    items = [_string(f"{key}[{i}]", v).strip() for i, v in enumerate(value)]
    if not all(items):
        raise ConfigError(key, "empty strings are not allowed")
    return items


def _string_list(key: str, value: Any) -> list[str]:
    """Like :func:`_strings`, but an empty list is fine."""
    return [] if value == [] else _strings(key, value)


def _patterns(key: str, value: Any) -> list[str]:
    patterns = _strings(key, value)
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{key}[{i}]", f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


def _scopes(key: str, value: Any) -> list[str]:
    scopes = _strings(key, value)
    unknown = [s for s in scopes if s not in ALERT_SCOPES]
    if unknown:
        raise ConfigError(key, f"unknown scope {unknown[0]!r} (scopes: {', '.join(ALERT_SCOPES)})")
    return scopes


def _parse_log(section: _Section) -> LogConfig:
    return LogConfig(
        level=section.get("level", _choice(LOG_LEVELS), "info"),
        format=section.get("format", _choice(LOG_FORMATS), "auto"),
    )


def _parse_channels(raw: Any) -> tuple[ChannelConfig, ...]:
    if raw is None or raw == []:
        raise ConfigError("channels", 'no channels configured; add [[channels]] with name = "MFARussia"')
    if not isinstance(raw, list):
        raise ConfigError("channels", "must be an array of tables: [[channels]]")
    channels: list[ChannelConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(raw):
        prefix = f"channels[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(prefix, "must be a table with a name")
        section = _Section(prefix, table, {"name", "backfill", "poll_interval", "stale_after", "source", "download_media"})
        if "name" not in table:
            raise ConfigError(f"{prefix}.name", "missing")
        name = _channel_name(f"{prefix}.name", table["name"])
        if name.lower() in seen:
            raise ConfigError(f"{prefix}.name", f"channel {name!r} is listed twice")
        seen.add(name.lower())
        channels.append(ChannelConfig(
            name=name,
            backfill=section.get("backfill", _bool, True),
            source=section.get("source", _choice(CHANNEL_SOURCES), "auto"),
            download_media=section.get("download_media", _bool, False),
            poll_interval=section.get("poll_interval", _positive_duration, None),
            stale_after=section.get("stale_after", _positive_duration, None),
        ))
    return tuple(channels)


def normalise_channel_name(value: str) -> str:
    """``@MFARussia`` and ``https://t.me/s/MFARussia`` both mean ``MFARussia``."""
    value = value.strip()
    for prefix in ("https://t.me/s/", "https://t.me/", "http://t.me/s/", "http://t.me/", "t.me/", "@"):
        if value.startswith(prefix):
            return value[len(prefix):].rstrip("/")
    return value


def _channel_name(key: str, value: Any) -> str:
    name = normalise_channel_name(_string(key, value))
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


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {type(value).__name__}")
    return _expand_env(key, value)


def _expand_env(key: str, value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise ConfigError(key, f"environment variable {name} is not set")
        return os.environ[name]

    return ENV_REFERENCE.sub(replace, value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}")
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(key, f"expected a whole number >= 0, got {value!r}")
    return value


def _positive_int(key: str, value: Any) -> int:
    if _count(key, value) == 0:
        raise ConfigError(key, "must be greater than 0")
    return int(value)


def _duration(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration like \"2s\", got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(_string(key, value))
        except ValueError as exc:
            raise ConfigError(key, str(exc)) from None
    if seconds < 0:
        raise ConfigError(key, "must not be negative")
    return seconds


def _positive_duration(key: str, value: Any) -> float:
    seconds = _duration(key, value)
    if seconds == 0:
        raise ConfigError(key, "must be greater than 0")
    return seconds


def _http_url(key: str, value: Any) -> str:
    url = _string(key, value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"expected an http(s) URL such as https://t.me, got {value!r}")
    return url


def _proxy_url(key: str, value: Any) -> str | None:
    url = _string(key, value).strip()
    if not url:
        return None
    parts = urlsplit(url)
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


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        text = _string(key, value).lower()
        if text not in options:
            raise ConfigError(key, f"expected one of {', '.join(options)}, got {value!r}")
        return text

    return check


def _existing_file(key: str, path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(key, f"file not found: {path}")
    return path
