"""TOML configuration, validated at start-up into frozen records."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from monitor import __version__
from monitor.config_checks import (
    Section,
    as_bool,
    as_channel_name,
    as_count,
    as_domain,
    as_domains,
    as_duration,
    as_duration_or_never,
    as_http_url,
    as_patterns,
    as_positive_duration,
    as_positive_int,
    as_proxy_url,
    as_string,
    as_string_list,
    as_strings,
    expand_env,
    normalise_channel_name,
    one_of,
    pem_certificates,
)
from monitor.errors import ConfigError

DEFAULT_DATABASE = "legation.sqlite3"
DEFAULT_CHANNEL = "MFARussia"
DEFAULT_CONFIG_FILE = "legation.toml"
DEFAULT_WEB_URL = "https://t.me"
DEFAULT_USER_AGENT = f"legation/{__version__} (Telegram channel archiver)"
DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds: the longest an account request may take
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "console", "json")


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    web_url: str = DEFAULT_WEB_URL
    api_id: int | None = None  # account mode: from my.telegram.org, or LEGATION_API_ID
    api_hash: str | None = None  # or LEGATION_API_HASH; never logged
    session: Path = Path("legation")  # Telethon writes <session>.session, mode 0600
    max_flood_sleep: float = 60.0  # longer FloodWaits move an "auto" channel to the web preview
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT  # no account request waits longer (Telethon's may hang)
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

    def deliverable_rules(self) -> list[str]:
        """The rules whose alerts have somewhere to go (their own notify, or [alerts] notify)."""
        return [rule.name for rule in self.rules if rule.notify or self.notify]


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
        """What must never be logged: the API hash, proxy credentials, and every part of a
        notification URL that can carry a token (user, password, host, path segments, query
        values), whatever its length; a service's token may be short."""
        found = [self.telegram.api_hash or ""]
        if self.network.proxy:
            found.append(urlsplit(self.network.proxy).password or "")
        for url in [*self.alerts.notify, *(u for rule in self.alerts.rules for u in rule.notify)]:
            found += notification_secrets(url)
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


AUTH_SCHEMES = ("bearer", "basic", "token")  # words of an Authorization value, not secrets


def notification_secrets(url: str) -> list[str]:
    """The parts of an Apprise URL that may be secret, by the URL's structure."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    # user, password, host and "port": discord://webhook_id/..., tgram://bot_id:token/... hold tokens there
    values = [url, parts.netloc, *(unquote(piece) for piece in re.split(r"[:@]", parts.netloc))]
    values += [unquote(segment) for segment in parts.path.split("/")]
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        values += [value, *value.split()]  # "Bearer tk_..." and "tk_..."
    return [v for v in values if v and v.lower() not in AUTH_SCHEMES]


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
    top = Section("", raw, {"database", "telegram", "network", "sync", "pages", "schedule", "alerts", "log", "channels"})
    channels = _parse_channels(raw.get("channels"))
    return Config(
        database=base / top.get("database", as_string, DEFAULT_DATABASE),
        telegram=_parse_telegram(Section.child(raw, "telegram", set(TelegramConfig.__slots__)), base),
        network=_parse_network(Section.child(raw, "network", set(NetworkConfig.__slots__)), base),
        sync=_parse_sync(Section.child(raw, "sync", set(SyncConfig.__slots__))),
        pages=_parse_pages(Section.child(raw, "pages", set(PagesConfig.__slots__))),
        schedule=_parse_schedule(Section.child(raw, "schedule", set(ScheduleConfig.__slots__))),
        alerts=_parse_alerts(Section.child(raw, "alerts", set(AlertsConfig.__slots__))),
        log=_parse_log(Section.child(raw, "log", {"level", "format"})),
        channels=channels,
        source=source,
    )


def _parse_telegram(section: Section, base: Path) -> TelegramConfig:
    api_id = section.get("api_id", _api_id, None) or _api_id("LEGATION_API_ID", os.environ.get("LEGATION_API_ID"))
    api_hash = section.get("api_hash", as_string, "") or os.environ.get("LEGATION_API_HASH", "")
    return TelegramConfig(
        web_url=section.get("web_url", as_http_url, DEFAULT_WEB_URL),
        api_id=api_id,
        api_hash=api_hash or None,
        session=base / section.get("session", as_string, "legation"),
        max_flood_sleep=section.get("max_flood_sleep", as_duration, 60.0),
        request_timeout=section.get("request_timeout", as_positive_duration, DEFAULT_REQUEST_TIMEOUT),
        media_dir=base / section.get("media_dir", as_string, "media"),
        max_media_size=section.get("max_media_size", as_positive_int, 20 * 1024 * 1024),
    )


def _api_id(key: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = expand_env(key, value).strip()
        if not value.isdigit():
            raise ConfigError(key, "expected the numeric api_id from my.telegram.org")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, "expected the numeric api_id from my.telegram.org")
    return value


def _parse_network(section: Section, base: Path) -> NetworkConfig:
    d = NetworkConfig()
    ca_bundle = section.get("ca_bundle", as_string, "")
    return NetworkConfig(
        proxy=section.get("proxy", as_proxy_url, None),
        ca_bundle=pem_certificates("network.ca_bundle", base / ca_bundle) if ca_bundle else None,
        user_agent=section.get("user_agent", as_string, d.user_agent),
        timeout=section.get("timeout", as_positive_duration, d.timeout),
        request_delay=section.get("request_delay", as_duration, d.request_delay),
        max_retries=section.get("max_retries", as_count, d.max_retries),
        retry_backoff=section.get("retry_backoff", as_duration, d.retry_backoff),
        max_retry_wait=section.get("max_retry_wait", as_duration, d.max_retry_wait),
        max_response_size=section.get("max_response_size", as_positive_int, d.max_response_size),
        allow_private_addresses=section.get("allow_private_addresses", as_bool, False),
    )


def _parse_sync(section: Section) -> SyncConfig:
    d = SyncConfig()
    return SyncConfig(
        recheck_posts=section.get("recheck_posts", as_count, d.recheck_posts),
        recheck_age=section.get("recheck_age", as_duration, d.recheck_age),
        max_confirmations=section.get("max_confirmations", as_count, d.max_confirmations),
    )


def _parse_pages(section: Section) -> PagesConfig:
    d = PagesConfig()
    refetch = section.get("refetch_after", as_duration_or_never, None)
    extractors = dict(DEFAULT_EXTRACTORS)
    extractors.update(section.get("extractors", _extractor_map, dict[str, str]()))
    return PagesConfig(
        follow=tuple(section.get("follow", as_domains, list(d.follow))),
        extractors=extractors,
        request_delay=section.get("request_delay", as_duration, d.request_delay),
        max_per_round=section.get("max_per_round", as_count, d.max_per_round),
        retry_backoff=section.get("retry_backoff", as_positive_duration, d.retry_backoff),
        max_retry_wait=section.get("max_retry_wait", as_duration, d.max_retry_wait),
        max_attempts=section.get("max_attempts", as_positive_int, d.max_attempts),
        refetch_after=refetch,
        attachments=section.get("attachments", as_bool, d.attachments),
        robots_ttl=section.get("robots_ttl", as_duration, d.robots_ttl),
    )


def _extractor_map(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, 'expected a table of domain = extractor, e.g. { "mid.ru" = "midru" }')
    check = one_of(EXTRACTORS)
    return {as_domain(f"{key}.{d}", d): check(f"{key}.{d}", e) for d, e in value.items()}


def _parse_schedule(section: Section) -> ScheduleConfig:
    d = ScheduleConfig()
    return ScheduleConfig(**{
        name: section.get(name, as_positive_duration, getattr(d, name)) for name in ScheduleConfig.__slots__
    })


def _parse_alerts(section: Section) -> AlertsConfig:
    d = AlertsConfig()
    rules_raw = section.table.get("rules", [])
    if not isinstance(rules_raw, list):
        raise ConfigError("alerts.rules", "must be an array of tables: [[alerts.rules]]")
    rules = tuple(_parse_rule(i, table) for i, table in enumerate(rules_raw))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError("alerts.rules", f"rule names must be unique: {sorted(names)}")
    return AlertsConfig(
        notify=tuple(section.get("notify", as_string_list, list[str]())),
        rules=rules,
        max_age=section.get("max_age", as_duration, d.max_age),
        deliver_interval=section.get("deliver_interval", as_positive_duration, d.deliver_interval),
        retry_backoff=section.get("retry_backoff", as_positive_duration, d.retry_backoff),
        max_retry_wait=section.get("max_retry_wait", as_duration, d.max_retry_wait),
        max_attempts=section.get("max_attempts", as_positive_int, d.max_attempts),
        unhealthy_after=section.get("unhealthy_after", as_positive_duration, d.unhealthy_after),
    )


def _parse_rule(index: int, table: Any) -> AlertRule:
    if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"].strip():
        raise ConfigError(f"alerts.rules[{index}].name", "every rule needs a name")
    name = table["name"].strip()
    section = Section(f"alerts.rules[{name}]", table, set(AlertRule.__slots__))
    keywords = tuple(section.get("keywords", as_strings, list[str]()))
    regex = tuple(section.get("regex", as_patterns, list[str]()))
    if not keywords and not regex:
        raise ConfigError(section.key("keywords"), "a rule needs keywords, regex, or both")
    digest = section.get("digest", as_duration_or_never, None)
    return AlertRule(
        name=name,
        keywords=keywords,
        regex=regex,
        exclude=tuple(section.get("exclude", as_strings, list[str]())),
        channels=tuple(as_channel_name(section.key("channels"), c) for c in section.get("channels", as_strings, list[str]())),
        scope=tuple(section.get("scope", _scopes, list(ALERT_SCOPES))),
        language=section.get("language", one_of(tuple(STEM_LANGUAGES)), None),
        whole_words=section.get("whole_words", as_bool, True),
        every_change=section.get("every_change", as_bool, False),
        notify=tuple(section.get("notify", as_strings, list[str]())),
        digest=digest,
    )


def _scopes(key: str, value: Any) -> list[str]:
    scopes = as_strings(key, value)
    unknown = [s for s in scopes if s not in ALERT_SCOPES]
    if unknown:
        raise ConfigError(key, f"unknown scope {unknown[0]!r} (scopes: {', '.join(ALERT_SCOPES)})")
    return scopes


def _parse_log(section: Section) -> LogConfig:
    return LogConfig(
        level=section.get("level", one_of(LOG_LEVELS), "info"),
        format=section.get("format", one_of(LOG_FORMATS), "auto"),
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
        section = Section(prefix, table, {"name", "backfill", "poll_interval", "stale_after", "source", "download_media"})
        if "name" not in table:
            raise ConfigError(f"{prefix}.name", "missing")
        name = as_channel_name(f"{prefix}.name", table["name"])
        if name.lower() in seen:
            raise ConfigError(f"{prefix}.name", f"channel {name!r} is listed twice")
        seen.add(name.lower())
        channels.append(ChannelConfig(
            name=name,
            backfill=section.get("backfill", as_bool, True),
            source=section.get("source", one_of(CHANNEL_SOURCES), "auto"),
            download_media=section.get("download_media", as_bool, False),
            poll_interval=section.get("poll_interval", as_positive_duration, None),
            stale_after=section.get("stale_after", as_positive_duration, None),
        ))
    return tuple(channels)

