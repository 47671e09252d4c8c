"""The command line: each command end to end against the loopback t.me, help, README sections."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from tmeserver import FIXTURES

from monitor.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(cli.commands)


def invoke(config: Path, *args: str):
    return CliRunner().invoke(cli, ["-c", str(config), *args], catch_exceptions=False)


@pytest.fixture
def archived(tme, write_config):
    """An archive of our own MFA-style page, made by a real `legation backfill`."""
    channel = tme.channel("MFARussia", title="МИД России")
    page = (FIXTURES / "mfarussia_page.html").read_text(encoding="utf-8")
    from tmeserver import message_wraps
    channel.posts.update(message_wraps(page))
    for post_id in range(1, 30):
        channel.add(post_id, text=f"Briefing {post_id} on the Eurasian charter", channel_id=1115334455)
    config = write_config("MFARussia")
    result = invoke(config, "backfill")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["MFARussia: 32 new, 0 changed, 0 unchanged",
                                          "pages: 6 gone; queue: 6 gone"]
    return config


def test_search_prints_newest_first_with_highlights(archived, tme):
    result = invoke(archived, "search", "eurasian", "--limit", "2")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"2020-01-02T05:00:00Z  {tme.url}/MFARussia/29",
        "    Briefing 29 on the [Eurasian] charter",
        f"2020-01-02T04:00:00Z  {tme.url}/MFARussia/28",
        "    Briefing 28 on the [Eurasian] charter",
    ]


def test_search_filters_and_cyrillic(archived, tme):
    result = invoke(archived, "search", "Лаврова", "--channel", "mfarussia", "--since", "2024-11-01")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"2024-11-05T09:30:00Z  {tme.url}/MFARussia/22957"


def test_a_malformed_search_is_a_clear_error(archived):
    result = invoke(archived, "search", "--raw", '"unclosed')
    assert result.exit_code == 2
    assert result.stderr.startswith("legation: invalid search query '\"unclosed': unterminated string.")
    assert "Traceback" not in result.output


def test_a_bad_since_is_a_usage_error(archived):
    result = invoke(archived, "search", "x", "--since", "last week")
    assert result.exit_code == 2
    assert "is not a date like 2024-05-01" in result.output


def test_status_table_and_json(archived):
    table = invoke(archived, "status")
    data = invoke(archived, "status", "--json")

    assert table.exit_code == 1  # the fixture's newest post is from 2024: the channel is silent
    assert table.stdout.splitlines()[1:3] == ["account: none (web preview only)", "pages: 6 gone"]
    header, row = table.stdout.splitlines()[3:5]
    assert header.split() == ["channel", "posts", "last", "24h", "newest", "oldest", "backfill", "last", "sync",
                              "health"]
    assert row.split()[:6] == ["MFARussia", "32", "0", "22960", "1", "done"]
    assert re.search(r"no new post for \d+d$", row)
    report = json.loads(data.stdout)
    [status] = report["channels"]
    assert report["healthy"] is False and report["pages"] == {"gone": 6}
    assert (status["posts"], status["newest_id"], status["oldest_id"], status["last_error"]) == (32, 22960, 1, None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", status["last_sync_at"])
    assert status["problems"][0].startswith("no new post for ")


def test_sync_reports_a_failing_channel_and_exits_1(tme, write_config):
    config = write_config("missing_channel")
    result = invoke(config, "sync")
    assert result.exit_code == 1
    assert result.stdout.startswith("missing_channel: missing_channel: no public web preview")
    status = json.loads(invoke(config, "status", "--json").stdout)
    assert "no public web preview" in status["channels"][0]["last_error"]


def test_unconfigured_channel_argument_is_a_usage_error(tme, write_config):
    result = invoke(write_config("MFARussia"), "sync", "SomeoneElse")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("legation: channels: not configured: SomeoneElse; add each with 'legation add NAME'")


def test_status_without_an_archive_says_so(tmp_path, write_config):
    result = invoke(write_config("MFARussia"), "status")
    assert result.exit_code == 1
    assert "no archive at" in result.stderr
    assert not (tmp_path / "archive.sqlite3").exists()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name):
    command = cli.commands[name]
    assert command.help and len(command.help) > 40
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_readme_section(name):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"^### `legation .*{name}", readme, re.M), f"README has no section for {name}"
    assert f"legation -c config.toml {name}" in readme or f"legation {name}" in readme


def test_version():
    from monitor import __version__
    result = CliRunner().invoke(cli, ["--version"])
    assert result.output.strip() == f"legation, version {__version__}"
    assert isinstance(cli, click.Group)


@pytest.mark.parametrize("name", ["MFARussia", "@MFARussia", "https://t.me/MFARussia", "mfarussia", "t.me/s/MFARussia"])
def test_a_channel_is_named_any_way_everywhere(archived, name):
    found = invoke(archived, "search", "charter", "--channel", name, "--limit", "3")
    exported = invoke(archived, "export", "--channel", name)
    shown = invoke(archived, "history", name, "5")

    assert found.exit_code == 0 and found.stdout.count("/MFARussia/") == 3
    assert exported.exit_code == 0 and len(exported.stdout.splitlines()) == 32
    assert shown.exit_code == 0 and shown.stdout.startswith(f"{archived_web_url(archived)}/MFARussia/5: 1 version(s)")


def test_history_takes_a_pasted_post_url(archived):
    shown = invoke(archived, "history", "https://t.me/MFARussia/5")
    bad = invoke(archived, "history", "https://example.org/x")

    assert shown.exit_code == 0 and "/MFARussia/5: 1 version(s)" in shown.stdout.splitlines()[0]
    assert bad.exit_code == 2 and "is not a post URL such as https://t.me/MFARussia/22958" in bad.stderr


def archived_web_url(config: Path) -> str:
    return next(line.split('"')[1] for line in config.read_text().splitlines() if line.startswith("web_url"))


def test_alerts_with_nowhere_to_go_are_recorded_not_pending(tme, write_config):
    tme.channel("MFARussia").add(1, text="Лавров о хартии")
    config = write_config("MFARussia", extra=(
        '\n[alerts]\nmax_age = "36500d"\n'
        '[[alerts.rules]]\nname = "quiet"\nkeywords = ["хартия"]\nlanguage = "ru"\n'  # no notify: recorded only
        '[[alerts.rules]]\nname = "loud"\nkeywords = ["nothing matches this"]\nnotify = ["json://127.0.0.1:9/x"]\n'))
    assert invoke(config, "sync").exit_code == 0
    database = next(line.split('"')[1] for line in config.read_text().splitlines() if line.startswith("database"))
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT rule, delivered_at FROM alerts").fetchall() == [("quiet", None)]
        conn.execute("UPDATE alerts SET created_at = '2000-01-01T00:00:00Z'")  # long past unhealthy_after

    status = invoke(config, "status")

    assert "alerts: 0 undelivered" in status.stdout.splitlines()


def test_status_json_lists_never_synced_channels_too(archived):
    text = archived.read_text().replace('name = "MFARussia"', 'name = "MFARussia"\n[[channels]]\nname = "BelTA_eng"')
    archived.write_text(text)

    data = json.loads(invoke(archived, "status", "--json").stdout)

    assert [(c["username"], c["posts"]) for c in data["channels"]] == [("MFARussia", 32), ("BelTA_eng", 0)]
    assert data["channels"][1]["problems"] == ["never synced"] and data["healthy"] is False


def test_version_short_flag():
    result = CliRunner().invoke(cli, ["-V"])
    assert result.exit_code == 0 and result.stdout.startswith("legation, version ")


def test_outputs_that_cannot_be_written_are_one_clear_line(archived, tmp_path):
    exported = invoke(archived, "export", "-o", str(tmp_path / "nonexistent" / "x.jsonl"))
    warc = invoke(archived, "export-warc", str(tmp_path / "nonexistent" / "x.warc.gz"))
    bad_query = invoke(archived, "export", "--raw", "--query", '"unclosed', "-o", str(tmp_path / "q.jsonl"))

    for result in (exported, warc):
        assert result.exit_code == 2 and result.stderr.startswith("legation: cannot write ")
    assert bad_query.exit_code == 2 and "invalid search query" in bad_query.stderr
    assert not (tmp_path / "q.jsonl").exists() and list(tmp_path.glob("q.jsonl*")) == []  # nothing left behind


def test_export_warc_to_stdout(archived, tmp_path):
    result = CliRunner().invoke(cli, ["-c", str(archived), "export-warc", "-"], catch_exceptions=False)
    assert result.exit_code == 0 and not (tmp_path / "-").exists()
    assert "record(s) written to standard output" in result.stderr


def test_an_unconfigured_channel_says_how_to_add_it(archived):
    result = invoke(archived, "sync", "NoSuchChannel")
    assert result.exit_code == 2
    assert "not configured: NoSuchChannel" in result.stderr and "[[channels]]" in result.stderr


def test_init_writes_a_commented_config_and_add_appends_channels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    made = runner.invoke(cli, ["init"], catch_exceptions=False)
    assert made.exit_code == 0 and "following MFARussia" in made.stdout
    text = (tmp_path / "legation.toml").read_text()
    assert "# mid.ru's certificate chains to the Russian Trusted Root CA" in text

    again = runner.invoke(cli, ["init"], catch_exceptions=False)
    assert again.exit_code == 1 and "exists already" in again.stderr
    added = runner.invoke(cli, ["add", "https://t.me/s/BelTA_eng", "mfarussia", "@mid_rf"], catch_exceptions=False)
    assert added.exit_code == 0 and added.stdout.strip() == "following BelTA_eng, mid_rf in legation.toml"
    from monitor.config.settings import load_config
    config = load_config(tmp_path / "legation.toml")
    assert config.channel_names() == ["MFARussia", "BelTA_eng", "mid_rf"]
    assert (tmp_path / "legation.toml").read_text().startswith(text)  # comments and order kept

    bad = runner.invoke(cli, ["add", "../etc/passwd"], catch_exceptions=False)
    assert bad.exit_code == 2 and "not a public channel username" in bad.stderr
    assert load_config(tmp_path / "legation.toml").channel_names() == ["MFARussia", "BelTA_eng", "mid_rf"]
    elsewhere = runner.invoke(cli, ["-c", str(tmp_path / "other.toml"), "add", "BelTA_eng"], catch_exceptions=False)
    assert elsewhere.exit_code == 0
    assert load_config(tmp_path / "other.toml").channel_names() == ["BelTA_eng"]  # a new file: only what was added


def test_help_imports_none_of_the_machinery():
    import subprocess
    import sys

    probe = ("import sys\nfrom monitor.cli.main import cli\n"
             "try:\n    cli(['--help'], prog_name='legation')\nexcept SystemExit:\n    pass\n"
             "heavy = [m for m in ('telethon', 'httpx', 'lxml', 'apscheduler', 'apprise', 'trafilatura',"
             " 'monitor.daemon.service', 'snowballstemmer') if m in sys.modules]\nprint('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


def test_pages_alerts_and_history_speak_json(archived, tme):
    pages = json.loads(invoke(archived, "pages", "--json").stdout)
    assert len(pages) == 6 and {p["status"] for p in pages} == {"gone"}
    assert set(pages[0]) == {"url", "status", "fetched_at", "title", "error", "attempts", "version"}
    assert json.loads(invoke(archived, "alerts", "--json").stdout) == []
    history = json.loads(invoke(archived, "history", "https://t.me/MFARussia/22957", "--json").stdout)
    assert history["url"] == f"{tme.url}/MFARussia/22957"
    assert [v["version"] for v in history["versions"]] == [1] and history["events"] == []
    assert set(history["versions"][0]) == {"version", "text", "edited", "seen_at"}


def test_a_sync_without_an_account_loads_no_telegram_client(tme, write_config):
    import subprocess
    import sys

    tme.channel("ministry").add(1)
    config = write_config("ministry")
    probe = ("import sys\nfrom monitor.cli.main import cli\n"
             f"try:\n    cli(['-c', {str(config)!r}, 'sync'], prog_name='legation')\nexcept SystemExit:\n    pass\n"
             "print('LOADED', [m for m in ('telethon', 'apscheduler', 'playwright') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
