"""TOML configuration, validated at start-up into frozen records."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from monitor import __version__, install_command
from monitor.config.checks import (
    Section,
    as_bool,
    as_channel_name,
    as_count,
    as_domain,
    as_domains,
    as_duration,
    as_duration_or_never,
    as_host_port,
    as_http_url,
    as_notify_urls,
    as_optional_string,
    as_patterns,
    as_positive_duration,
    as_positive_int,
    as_proxy_url,
    as_string,
    as_string_list,
    as_strings,
    count_up_to,
    directory,
    duration_at_least,
    expand_env,
    keys_of,
    normalise_channel_name,
    one_of,
    parse_record,
    pem_certificates,
    rsa_public_key_file,
    setting,
)
from monitor.errors import ConfigError

DEFAULT_DATABASE = "legation.sqlite3"
DEFAULT_CHANNEL = "MFARussia"
DEFAULT_CONFIG_FILE = "legation.toml"
DEFAULT_WEB_URL = "https://t.me"
DEFAULT_USER_AGENT = f"legation/{__version__} (Telegram channel archiver)"
DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds: the longest an account request may take
TEST_SERVER = "149.154.167.40:443"  # Telegram's test data center 2
MAX_RETRIES = 20  # of one request: past that a failure only waits longer before it is said
MIN_POLL_INTERVAL = 1.0  # seconds: shorter polls only fill the runs table (requests keep request_delay apart)
INCOMING = ".incoming"  # under [telegram] media_dir: account downloads waiting to be stored by their hash


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    web_url: str = setting(DEFAULT_WEB_URL, as_http_url)
    # account mode: from my.telegram.org (or the environment); the hash is never logged
    api_id: int | None = setting(None, lambda key, value: _api_id(key, value), env="LEGATION_API_ID")
    api_hash: str | None = setting(None, as_optional_string, env="LEGATION_API_HASH")
    session: Path = setting(Path("legation"), as_string, path=True)  # Telethon writes <session>.session, 0600
    max_flood_sleep: float = setting(60.0, as_duration)  # longer FloodWaits move an "auto" channel to the web
    request_timeout: float = setting(DEFAULT_REQUEST_TIMEOUT, as_positive_duration)  # Telethon's may hang
    media_dir: Path = setting(Path("media"), as_string, path=directory)  # where download_media channels' files go
    max_media_size: int = setting(20 * 1024 * 1024, as_positive_int)
    # Another MTProto server: a data center's host:port and id, and its RSA public key (PEM);
    # test_servers = true means Telegram's test data center (phone numbers 99966XYYYY).
    server: str | None = setting(None, as_host_port)
    dc_id: int = setting(2, as_positive_int)
    server_key: Path | None = setting(None, as_string, path=lambda key, path: rsa_public_key_file(key, path))
    test_servers: bool = setting(False, as_bool)

    @property
    def server_address(self) -> tuple[int, str, int] | None:
        """(data center id, host, port) to connect to; None: Telegram's production servers."""
        server = self.server or (TEST_SERVER if self.test_servers else None)
        if server is None:
            return None
        host, _, port = server.rpartition(":")
        return self.dc_id, host.strip("[]"), int(port)

    @property
    def account_configured(self) -> bool:
        return self.api_id is not None and bool(self.api_hash)


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    proxy: str | None = setting(None, as_proxy_url)
    ca_bundle: Path | None = setting(None, as_string, path=lambda key, path: pem_certificates(key, path))
    user_agent: str = setting(DEFAULT_USER_AGENT, as_string)
    timeout: float = setting(30.0, as_positive_duration)
    request_delay: float = setting(2.0, as_duration)
    max_retries: int = setting(5, count_up_to(MAX_RETRIES))
    retry_backoff: float = setting(2.0, as_duration)
    max_retry_wait: float = setting(600.0, as_duration)
    max_response_size: int = setting(10 * 1024 * 1024, as_positive_int)
    allow_private_addresses: bool = setting(False, as_bool)


@dataclass(frozen=True, slots=True)
class SyncConfig:
    recheck_posts: int = setting(100, as_count)
    recheck_age: float = setting(7 * 86400.0, as_duration)
    max_confirmations: int = setting(50, as_count)
    reparse_after: float = setting(3600.0, as_duration)


EXTRACTORS = ("midru", "belta", "generic")
BROWSERS = ("", "chromium")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_EXTRACTORS = {"mid.ru": "midru", "belta.by": "belta"}
# Sites that publish a release under /<language>/ with the same path and id in each language.
DEFAULT_RELEASE_LANGUAGES = {"mid.ru": ("ru", "en", "de", "fr", "es")}
LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")


def _extractor_map(key: str, value: Any) -> dict[str, str]:
    """The built-in extractors, with the configured ones over them."""
    if not isinstance(value, Mapping):
        raise ConfigError(key, 'expected a table of domain = extractor, e.g. { "mid.ru" = "midru" }')
    check = one_of(EXTRACTORS)
    return {**DEFAULT_EXTRACTORS, **{as_domain(f"{key}.{d}", d): check(f"{key}.{d}", e) for d, e in value.items()}}


def _release_languages(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    """The built-in same-id sites, with the configured ones over them ([] turns a site off)."""
    if not isinstance(value, Mapping):
        raise ConfigError(key, 'expected a table of domain = [languages], e.g. { "mid.ru" = ["ru", "en", "de"] }')
    configured: dict[str, tuple[str, ...]] = {}
    for domain, languages in value.items():
        where = f"{key}.{domain}"
        codes = tuple(code.lower() for code in as_string_list(where, languages))
        bad = [code for code in codes if not LANGUAGE_CODE.match(code)]
        if bad:
            raise ConfigError(where, f"{bad[0]!r} is not a two-letter language code as in the site's URLs (ru, en, de)")
        configured[as_domain(where, domain)] = codes
    return {**DEFAULT_RELEASE_LANGUAGES, **configured}


@dataclass(frozen=True, slots=True)
class PagesConfig:
    follow: tuple[str, ...] = setting(("mid.ru",), as_domains)
    extractors: Mapping[str, str] = setting(check=_extractor_map, factory=lambda: dict(DEFAULT_EXTRACTORS))
    request_delay: float = setting(5.0, as_duration)
    max_per_round: int = setting(30, as_count)
    retry_backoff: float = setting(600.0, as_positive_duration)
    max_retry_wait: float = setting(86400.0, as_duration)
    max_attempts: int = setting(8, as_positive_int)
    refetch_after: float | None = setting(None, as_duration_or_never)
    attachments: bool = setting(True, as_bool)
    # Other language versions of an archived release: the translations its page links to
    # (on followed domains), and on the sites of ``languages`` the same path under each language.
    translations: bool = setting(True, as_bool)
    languages: Mapping[str, tuple[str, ...]] = setting(
        check=_release_languages, factory=lambda: dict(DEFAULT_RELEASE_LANGUAGES))
    robots_ttl: float = setting(86400.0, as_duration)
    # "chromium": a page that answers with a JavaScript wall is fetched again in headless
    # Chromium (Playwright: pip install '.[browser]' in the checkout); every request it makes goes through
    # legation's own HTTP client (proxy, ca_bundle, address guard, request_delay).
    browser: str | None = setting(None, lambda key, value: one_of(BROWSERS)(key, value) or None)
    browser_path: str | None = setting(None, as_optional_string)  # default: chromium on PATH
    browser_timeout: float = setting(60.0, as_positive_duration)  # per page, the wall's challenge included
    browser_max_bytes: int = setting(20 * 1024 * 1024, as_positive_int)  # all the page's requests together

    def extractor_for(self, host: str) -> str:
        """The extractor named for ``host`` or its closest configured parent domain."""
        for domain in _parents(host):
            if domain in self.extractors:
                return self.extractors[domain]
        return "generic"

    def follows(self, host: str) -> bool:
        return any(domain in self.follow for domain in _parents(host))

    def release_site(self, host: str) -> tuple[str, tuple[str, ...]]:
        """The followed (or same-id) domain ``host`` belongs to, and that site's release languages."""
        for domain in _parents(host):
            if domain in self.languages:
                return domain, self.languages[domain]
        for domain in _parents(host):
            if domain in self.follow:
                return domain, ()
        return host.lower().rstrip("."), ()


def _parents(host: str) -> list[str]:
    labels = host.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


ALERT_SCOPES = ("posts", "edits", "deletions", "pages")
STEM_LANGUAGES = {"ru": "russian", "de": "german", "en": "english", "fr": "french", "es": "spanish",
                  "it": "italian", "pt": "portuguese", "nl": "dutch", "uk": "ukrainian", "pl": "polish",
                  "tr": "turkish", "sv": "swedish", "fi": "finnish", "ar": "arabic"}


def _scopes(key: str, value: Any) -> list[str]:
    scopes = as_strings(key, value)
    unknown = [s for s in scopes if s not in ALERT_SCOPES]
    if unknown:
        raise ConfigError(key, f"unknown scope {unknown[0]!r} (scopes: {', '.join(ALERT_SCOPES)})")
    return scopes


def _channel_names(key: str, value: Any) -> list[str]:
    return [as_channel_name(key, name) for name in as_strings(key, value)]


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str = setting(check=as_string)  # required: checked by _rules
    keywords: tuple[str, ...] = setting((), as_strings)
    regex: tuple[str, ...] = setting((), as_patterns)
    exclude: tuple[str, ...] = setting((), as_strings)
    channels: tuple[str, ...] = setting((), _channel_names)  # empty: every channel
    scope: tuple[str, ...] = setting(ALERT_SCOPES, _scopes)
    language: str | None = setting(None, one_of(tuple(STEM_LANGUAGES)))  # Snowball stemming
    whole_words: bool = setting(True, as_bool)  # False: a keyword matches the start of a word
    every_change: bool = setting(False, as_bool)  # edits: alert on every matching version, not only new matches
    # also when a post elsewhere repeats a statement this rule matches (an echo: repost, edited repost)
    echoes: bool = setting(False, as_bool)
    notify: tuple[str, ...] = setting((), lambda key, value: as_notify_urls(key, as_strings(key, value)))
    digest: float | None = setting(None, as_duration_or_never)  # one message per period for this rule


def _rules(key: str, value: Any) -> tuple[AlertRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(key, "must be an array of tables: [[alerts.rules]]")
    rules = []
    for index, table in enumerate(value):
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"].strip():
            raise ConfigError(f"{key}[{index}].name", "every rule needs a name")
        name = table["name"].strip()
        section = Section(f"{key}[{name}]", table, keys_of(AlertRule))
        rule = parse_record(AlertRule, section, Path(), name=name)
        if not rule.keywords and not rule.regex:
            raise ConfigError(section.key("keywords"), "a rule needs keywords, regex, or both")
        rules.append(rule)
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(key, f"rule names must be unique: {sorted(names)}")
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    notify: tuple[str, ...] = setting((), lambda key, value: as_notify_urls(key, as_string_list(key, value)))
    rules: tuple[AlertRule, ...] = setting((), _rules)
    max_age: float = setting(2 * 86400.0, as_duration)
    deliver_interval: float = setting(30.0, as_positive_duration)
    delivery_timeout: float = setting(30.0, as_positive_duration)  # one message, sent or not
    retry_backoff: float = setting(60.0, as_positive_duration)
    max_retry_wait: float = setting(3600.0, as_duration)
    max_attempts: int = setting(10, as_positive_int)
    unhealthy_after: float = setting(3600.0, as_positive_duration)

    def deliverable_rules(self) -> list[str]:
        """The rules whose alerts have somewhere to go (their own notify, or [alerts] notify)."""
        return [rule.name for rule in self.rules if rule.notify or self.notify]


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "console", "json")


MEDIA_KINDS = ("photos", "thumbnails", "videos")
MEDIA_ROLES = {"photos": "photo", "thumbnails": "thumbnail", "videos": "video"}


def _media_kinds(key: str, value: Any) -> list[str]:
    kinds = [] if value == [] else as_strings(key, value)
    check = one_of(MEDIA_KINDS)
    return [check(f"{key}[{i}]", kind) for i, kind in enumerate(kinds)]


@dataclass(frozen=True, slots=True)
class MediaConfig:
    # What the web preview's media are kept as files: photos (full size), video thumbnails,
    # and videos the preview itself carries (small ones); [] keeps none.
    download: tuple[str, ...] = setting(("photos", "thumbnails"), _media_kinds)
    dir: Path | None = setting(None, as_string, path=directory)  # default: legation-media next to the archive
    max_size: int = setting(20 * 1024 * 1024, as_positive_int)  # per file; larger ones are "skipped"
    url_ttl: float = setting(86400.0, as_positive_duration)  # a CDN link is tried this long after a page showed it

    def wants(self, role: str) -> bool:
        return any(MEDIA_ROLES[kind] == role for kind in self.download)


def _languages(key: str, value: Any) -> list[str]:
    return [one_of(tuple(STEM_LANGUAGES))(f"{key}[{i}]", language) for i, language in enumerate(as_strings(key, value))]


@dataclass(frozen=True, slots=True)
class SearchConfig:
    # Languages whose word forms a search finds (Snowball stems, by the script of each word).
    languages: tuple[str, ...] = setting(("ru", "en", "de"), _languages)


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = setting("info", one_of(LOG_LEVELS))
    format: str = setting("auto", one_of(LOG_FORMATS))


def _tsa_urls(key: str, value: Any) -> list[str]:
    return [as_http_url(f"{key}[{i}]", url) for i, url in enumerate(as_string_list(key, value))]


@dataclass(frozen=True, slots=True)
class EvidenceConfig:
    # RFC 3161 time-stamping authorities asked to sign the evidence chain's newest record
    # (none: the chain is kept, but no third party vouches for its time).
    tsa: tuple[str, ...] = setting((), _tsa_urls)
    stamp_interval: float = setting(3600.0, duration_at_least(60.0, '"1m"'))  # at most one stamp a TSA this often
    # PEM roots that vouch for the TSAs' certificates, besides the usual web roots (certifi).
    tsa_ca: Path | None = setting(None, as_string, path=lambda key, path: pem_certificates(key, path))


CHANNEL_SOURCES = ("web", "account", "auto")


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str = setting(check=as_string)  # required: checked by _channels
    backfill: bool = setting(True, as_bool)
    source: str = setting("auto", one_of(CHANNEL_SOURCES))  # auto: the account when logged in, else the web
    download_media: bool = setting(False, as_bool)  # account mode: photos and documents into media_dir
    join: bool = setting(False, as_bool)  # account mode: join the channel (once) so that live updates arrive
    poll_interval: float | None = setting(None, duration_at_least(MIN_POLL_INTERVAL, '"1s"'))  # None: [schedule]
    stale_after: float | None = setting(None, as_positive_duration)  # None: [schedule] stale_after


def _channels(key: str, value: Any) -> tuple[ChannelConfig, ...]:
    if value == []:
        raise ConfigError(key, 'no channels configured; add [[channels]] with name = "MFARussia", '
                               f"or leave out channels to follow {DEFAULT_CHANNEL}")
    if not isinstance(value, list):
        raise ConfigError(key, "must be an array of tables: [[channels]]")
    channels: list[ChannelConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(value):
        prefix = f"{key}[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(prefix, "must be a table with a name")
        section = Section(prefix, table, keys_of(ChannelConfig))
        if "name" not in table:
            raise ConfigError(f"{prefix}.name", "missing")
        name = as_channel_name(f"{prefix}.name", table["name"])
        if name.lower() in seen:
            raise ConfigError(f"{prefix}.name", f"channel {name!r} is listed twice")
        seen.add(name.lower())
        channels.append(parse_record(ChannelConfig, section, Path(), name=name))
    return tuple(channels)


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    poll_interval: float = setting(300.0, duration_at_least(MIN_POLL_INTERVAL, '"1s"'))
    pages_interval: float = setting(60.0, as_positive_duration)
    recheck_interval: float = setting(86400.0, as_positive_duration)
    recheck_age: float = setting(30 * 86400.0, as_positive_duration)
    stale_after: float = setting(2 * 86400.0, as_positive_duration)
    failing_after: float = setting(3600.0, as_positive_duration)
    shutdown_timeout: float = setting(10.0, as_positive_duration)
    forget_runs_after: float | None = setting(30 * 86400.0, as_duration_or_never)  # None: keep every run
    # workers sharing a PostgreSQL archive: a job is a worker's this long past its last heartbeat
    # (one every quarter of it); a dead worker's jobs pass to another within it
    lease_ttl: float = setting(60.0, duration_at_least(2.0, '"2s"'))


@dataclass(frozen=True, slots=True)
class Config:
    # an SQLite file, or a postgresql:// URL (the password better in PGPASSWORD or ~/.pgpass)
    database: Path | str = setting(Path(DEFAULT_DATABASE), lambda key, value: _database(key, value), path=True,
                                   env="LEGATION_DATABASE")
    telegram: TelegramConfig = setting(section=TelegramConfig, factory=TelegramConfig)
    network: NetworkConfig = setting(section=NetworkConfig, factory=NetworkConfig)
    sync: SyncConfig = setting(section=SyncConfig, factory=SyncConfig)
    pages: PagesConfig = setting(section=PagesConfig, factory=PagesConfig)
    schedule: ScheduleConfig = setting(section=ScheduleConfig, factory=ScheduleConfig)
    alerts: AlertsConfig = setting(section=AlertsConfig, factory=AlertsConfig)
    log: LogConfig = setting(section=LogConfig, factory=LogConfig)
    search: SearchConfig = setting(section=SearchConfig, factory=SearchConfig)
    media: MediaConfig = setting(section=MediaConfig, factory=MediaConfig)
    evidence: EvidenceConfig = setting(section=EvidenceConfig, factory=EvidenceConfig)
    channels: tuple[ChannelConfig, ...] = setting((ChannelConfig(DEFAULT_CHANNEL),), _channels)
    source: Path | None = None  # the file it was read from; not a key

    def secrets(self) -> list[str]:
        """What must never be logged: the API hash, proxy credentials, and every part of a
        notification URL that can carry a token (user, password, host, path segments, query
        values), whatever its length; a service's token may be short."""
        found = [self.telegram.api_hash or ""]
        if isinstance(self.database, str):
            found.append(urlsplit(self.database).password or "")
        if self.network.proxy:
            found.append(urlsplit(self.network.proxy).password or "")
        for url in [*self.alerts.notify, *(u for rule in self.alerts.rules for u in rule.notify)]:
            found += notification_secrets(url)
        for url in self.evidence.tsa:  # a TSA with a subscription takes user:password@
            found.append(urlsplit(url).password or "")
        return [value for value in found if value]

    @property
    def on_postgres(self) -> bool:
        return isinstance(self.database, str)

    @property
    def archive_name(self) -> str:
        """The archive as legation prints it: a path, or a URL without its password."""
        if isinstance(self.database, str):
            return _display_url(self.database)
        return str(self.database)

    @property
    def media_dir(self) -> Path:
        """Where media files go: ``[media] dir``, or ``legation-media`` next to the archive (next to the
        config file for a PostgreSQL archive)."""
        if self.media.dir:
            return self.media.dir
        if isinstance(self.database, str):
            return (self.source.resolve().parent if self.source else Path.cwd()) / "legation-media"
        return self.database.parent / "legation-media"

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
        if not Path(DEFAULT_CONFIG_FILE).exists():  # the defaults, with the environment's account keys
            return parse_config({}, base=Path())
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


def _database(key: str, value: Any) -> str:
    text = expand_env(key, as_string(key, value))
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            raise ConfigError(key, f"expected an SQLite file or a postgresql:// URL, not {scheme}://")
        try:
            parts = urlsplit(text)
            _ = parts.port
        except ValueError:
            raise ConfigError(key, "not a valid postgresql:// URL (its port?)") from None
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            raise ConfigError(key, "a postgresql:// URL needs its database: postgresql://user@host/DATABASE")
    return text


def _display_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def parse_config(raw: Mapping[str, Any], *, base: Path, source: Path | None = None) -> Config:
    """Validate a parsed TOML document; relative paths are taken from ``base``."""
    config = parse_record(Config, Section("", raw, keys_of(Config)), base, source=source)
    if config.pages.browser:
        config = dataclasses.replace(config, pages=_with_browser(config.pages))
    return config


def _with_browser(pages: PagesConfig) -> PagesConfig:
    """``[pages] browser`` can work here: Playwright installed, a Chromium found (its path kept)."""
    if importlib.util.find_spec("playwright") is None:
        raise ConfigError("pages.browser", f"needs Playwright: {install_command('browser')} "
                                           "(or set browser = \"\" to archive walled pages as blocked)")
    found = pages.browser_path or next((p for name in CHROMIUM_NAMES if (p := shutil.which(name))), None)
    if found is None or not Path(found).is_file() or not os.access(found, os.X_OK):
        where = f"{pages.browser_path} is not an executable file" if pages.browser_path else \
            "no chromium on PATH (apt install chromium, or set [pages] browser_path)"
        raise ConfigError("pages.browser_path" if pages.browser_path else "pages.browser", where)
    return dataclasses.replace(pages, browser_path=found)


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
