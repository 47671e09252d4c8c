"""Config: the example loads, defaults are sane, every bad key is named."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from monitor.config.checks import parse_duration
from monitor.config.settings import ChannelConfig, Config, load_config, parse_config
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def parse(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_example_loads_and_follows_mfarussia():
    config = load_config(ROOT / "config.example.toml")

    assert config.channels == (ChannelConfig("MFARussia", backfill=True),)
    assert config.database == ROOT / "legation.sqlite3"
    assert config.telegram.web_url == "https://t.me"
    assert (config.network.proxy, config.network.ca_bundle) == (None, None)
    assert (config.network.timeout, config.network.request_delay, config.network.max_retry_wait) == (30.0, 2.0, 600.0)


def test_the_example_documents_every_key():
    from monitor.config.checks import keys_of
    text = (ROOT / "config.example.toml").read_text()
    from monitor.config.settings import (
        AlertRule,
        AlertsConfig,
        ChannelConfig,
        LogConfig,
        NetworkConfig,
        PagesConfig,
        ScheduleConfig,
        SearchConfig,
        SyncConfig,
        TelegramConfig,
    )
    for record in (TelegramConfig, NetworkConfig, SyncConfig, PagesConfig, ScheduleConfig, AlertsConfig, AlertRule, SearchConfig,
                   LogConfig, ChannelConfig):
        for key in keys_of(record):
            if key != "rules":
                assert f"\n{key} = " in text or f"\n# {key} = " in text, key


def test_no_config_means_built_in_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEGATION_API_ID", "12345")
    monkeypatch.setenv("LEGATION_API_HASH", "0123456789abcdef")
    config = load_config(None)
    assert config.channels == (ChannelConfig("MFARussia"),)
    assert config.database == Path("legation.sqlite3")
    assert config.telegram.account_configured  # the environment's account keys count without a file too


def test_a_config_without_channels_follows_the_default_channel(tmp_path):
    config = parse('database = "mine.sqlite3"\n[network]\nrequest_delay = "3s"\n', tmp_path)
    assert config.channels == (ChannelConfig("MFARussia"),)
    assert (config.database, config.network.request_delay) == (tmp_path / "mine.sqlite3", 3.0)


def test_every_default_comes_from_its_record(tmp_path, monkeypatch):
    monkeypatch.delenv("LEGATION_API_ID", raising=False)
    monkeypatch.delenv("LEGATION_API_HASH", raising=False)
    from monitor.config.settings import Config, TelegramConfig
    config = parse("", tmp_path)
    # an empty file is the built-in configuration, with paths taken from the file's directory
    built_in = Config()
    assert config.database == tmp_path / built_in.database
    assert config.telegram == dataclasses.replace(TelegramConfig(), session=tmp_path / "legation",
                                                  media_dir=tmp_path / "media")
    for section in ("network", "sync", "pages", "schedule", "alerts", "log"):
        assert getattr(config, section) == getattr(built_in, section), section


def test_account_keys_come_from_the_environment_when_the_file_has_none(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGATION_API_ID", "12345")
    monkeypatch.setenv("LEGATION_API_HASH", "0123456789abcdef")
    config = parse('[telegram]\napi_hash = ""\n', tmp_path)
    assert (config.telegram.api_id, config.telegram.api_hash) == (12345, "0123456789abcdef")
    monkeypatch.setenv("LEGATION_API_ID", "twelve")
    with pytest.raises(ConfigError) as caught:
        parse("", tmp_path)
    assert caught.value.key == "LEGATION_API_ID"


def test_durations():
    assert [parse_duration(v) for v in ("500ms", "2s", "5m", "1h", "1.5s", "1d")] == [0.5, 2, 300, 3600, 1.5, 86400]
    with pytest.raises(ValueError, match="'5 minutes' is not a duration"):
        parse_duration("5 minutes")


def test_environment_references(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGATION_TEST_PROXY", "socks5://user:secret@127.0.0.1:1080")
    config = parse('[network]\nproxy = "${LEGATION_TEST_PROXY}"\n[[channels]]\nname = "MFARussia"\n', tmp_path)
    assert config.network.proxy == "socks5://user:secret@127.0.0.1:1080"


def test_channel_name_forms(tmp_path):
    config = parse('[[channels]]\nname = "@BelTA_eng"\n[[channels]]\nname = "https://t.me/s/mid_rf"\n', tmp_path)
    assert [c.name for c in config.channels] == ["BelTA_eng", "mid_rf"]
    assert config.telegram.web_url == "https://t.me"  # defaults hold for absent tables
    assert config.network.request_delay == 2.0
    assert config.channel_names(("belta_eng",)) == ["BelTA_eng"]
    with pytest.raises(ConfigError, match="not configured: nope"):
        config.channel_names(("nope",))


BAD = [
    ('[pages]\nlanguages = { "mid.ru" = ["russian"] }', "pages.languages.mid.ru", "two-letter language code"),
    ('[pages]\nlanguages = ["ru"]', "pages.languages", "table of domain"),
    ('colour = "red"\n[[channels]]\nname = "MFARussia"', "colour", "unknown key"),
    ('[network]\ntimeout = "soon"\n[[channels]]\nname = "MFARussia"', "network.timeout", "not a duration"),
    ('[network]\nrequest_delay = "-1s"\n[[channels]]\nname = "MFARussia"', "network.request_delay", "not a duration"),
    ('[network]\nproxy = "ftp://x:21"\n[[channels]]\nname = "MFARussia"', "network.proxy", "proxy URL"),
    ('[network]\nca_bundle = "missing.pem"\n[[channels]]\nname = "MFARussia"', "network.ca_bundle", "file not found"),
    ('[network]\nmax_retries = -1\n[[channels]]\nname = "MFARussia"', "network.max_retries", "whole number"),
    ('[network]\nproxy = "${LEGATION_UNSET_VARIABLE}"\n[[channels]]\nname = "MFARussia"', "network.proxy", "LEGATION_UNSET_VARIABLE is not set"),
    ('[telegram]\nweb_url = "t.me"\n[[channels]]\nname = "MFARussia"', "telegram.web_url", "http(s) URL"),
    ('[log]\nlevel = "loud"\n[[channels]]\nname = "MFARussia"', "log.level", "expected one of"),
    ('database = 5\n[[channels]]\nname = "MFARussia"', "database", "expected a string"),
    ('telegram = 1\n[[channels]]\nname = "MFARussia"', "telegram", "must be a table"),
    ("channels = []", "channels", "no channels configured"),
    ('[search]\nlanguages = ["ru", "klingon"]', "search.languages[1]", "expected one of"),
    ('[telegram]\nserver = "149.154.167.40"', "telegram.server", "expected host:port"),
    ('[telegram]\nserver = "https://u:secretpw@host:443/x"', "telegram.server", "expected host:port"),
    ('[telegram]\nserver_key = "c.toml"', "telegram.server_key", "not an RSA public key"),
    ('[alerts]\nnotify = ["bogus://token123@x"]', "alerts.notify[0]", "'bogus://' is not a service Apprise knows"),
    ('[[alerts.rules]]\nname = "r"\nkeywords = ["x"]\nnotify = ["json://localhost", "no-scheme-secretpw"]',
     "alerts.rules[r].notify[1]", "not a notification URL"),
    ('[[channels]]\nname = "../etc/passwd"', "channels[0].name", "not a public channel username"),
    ('[[channels]]\nname = "MFARussia?before=1"', "channels[0].name", "not a public channel username"),
    ('[[channels]]\nname = "MFАRussia"', "channels[0].name", "not a public channel username"),  # Cyrillic А
    ('[[channels]]\nname = "MFARussia"\n[[channels]]\nname = "mfarussia"', "channels[1].name", "listed twice"),
    ('[[channels]]\nname = "MFARussia"\nbackfill = "yes"', "channels[0].backfill", "true or false"),
    ('[[channels]]\nname = "MFARussia"\nsource = "pigeon"', "channels[0].source", "expected one of"),
    ('[telegram]\napi_id = "abc"\n[[channels]]\nname = "MFARussia"', "telegram.api_id", "numeric api_id"),
    ('[[channels]]\nbackfill = true', "channels[0].name", "missing"),
    ("[[channels]\nname=", "config", "not valid TOML"),
    ('[network]\ntimeout = nan\n[[channels]]\nname = "MFARussia"', "network.timeout", "finite duration"),
    ('[schedule]\npoll_interval = inf\n[[channels]]\nname = "MFARussia"', "schedule.poll_interval", "finite duration"),
    ('[network]\ntimeout = "99999999999d"\n[[channels]]\nname = "MFARussia"', "network.timeout", "too long"),
    ('[[channels]]\nname = "MFARussia"\nstale_after = nan', "channels[0].stale_after", "finite duration"),
    ('[network]\nmax_retries = 9223372036854775808\n[[channels]]\nname = "MFARussia"', "network.max_retries",
     "whole number from 0 to"),
    ('[network]\nproxy = "http://u:secretpw@[host"\n[[channels]]\nname = "MFARussia"', "network.proxy",
     "not a valid proxy URL"),
    ('[network]\ntimeout = "0s"\n[[channels]]\nname = "MFARussia"', "network.timeout", "must be greater than 0"),
    ('[alerts]\ndelivery_timeout = 0\n[[channels]]\nname = "MFARussia"', "alerts.delivery_timeout",
     "must be greater than 0"),
    ('[network]\nmax_retries = 1000000000\n[[channels]]\nname = "MFARussia"', "network.max_retries",
     "expected at most 20"),
    ('[schedule]\npoll_interval = "1ms"\n[[channels]]\nname = "MFARussia"', "schedule.poll_interval",
     "too short: at least \"1s\""),
    ('[[channels]]\nname = "MFARussia"\npoll_interval = "0.2s"', "channels[0].poll_interval", "too short"),
    ('[media]\ndir = "/etc/passwd"\n[[channels]]\nname = "MFARussia"', "media.dir",
     "/etc/passwd exists and is not a directory"),
    ('[telegram]\nmedia_dir = "/etc/hostname"\n[[channels]]\nname = "MFARussia"', "telegram.media_dir",
     "exists and is not a directory"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD)
def test_bad_config_names_the_key(tmp_path, text, key, reason):
    with pytest.raises(ConfigError) as caught:
        parse(text, tmp_path)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert "secretpw" not in str(caught.value)  # credentials are never echoed


def test_a_ca_bundle_that_is_not_pem_is_a_config_error(tmp_path):
    (tmp_path / "root.cer").write_bytes(b"\x30\x82\x05\x00 DER bytes, not PEM")
    with pytest.raises(ConfigError) as caught:
        parse('[network]\nca_bundle = "root.cer"\n[[channels]]\nname = "MFARussia"', tmp_path)
    assert caught.value.key == "network.ca_bundle" and "is not a PEM certificate file" in caught.value.reason


def test_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[network]\ntimeout = "soon"\n[[channels]]\nname = "MFARussia"\n')

    done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(path), "status"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "legation: config error: network.timeout: 'soon' is not a duration like \"500ms\", \"2s\", \"5m\", \"1h\""
    ]
    assert "Traceback" not in done.stderr


def test_a_missing_config_file_exits_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(tmp_path / "nope.toml"), "sync"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert "config error: config: file not found" in done.stderr


def test_parse_config_takes_relative_paths_from_the_config_directory(tmp_path):
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = parse_config({"database": "a.sqlite3", "network": {"ca_bundle": "ca.pem"},
                           "channels": [{"name": "MFARussia"}]}, base=tmp_path)
    assert (config.database, config.network.ca_bundle) == (tmp_path / "a.sqlite3", tmp_path / "ca.pem")


def test_lists_in_the_file_are_frozen_in_the_records(tmp_path):
    config = parse('[pages]\nfollow = ["mid.ru", "eng.belta.by"]\n[[alerts.rules]]\nname = "r"\n'
                   'keywords = ["Лавров"]\nscope = ["posts"]\n', tmp_path)
    assert config.pages.follow == ("mid.ru", "eng.belta.by")
    assert config.alerts.rules[0].keywords == ("Лавров",) and config.alerts.rules[0].scope == ("posts",)
    assert hash(config.alerts.rules[0])  # frozen records all the way down
