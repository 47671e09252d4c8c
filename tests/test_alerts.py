"""Alerts: the matcher, and alerts recorded with their content and delivered for real over json://."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import connect_archive, read_only, rows
from tmeserver import FIXTURES

from monitor.alerts.rules import Matcher
from monitor.cli.main import cli
from monitor.config.settings import AlertRule, load_config
from monitor.daemon.service import archive_channels
from monitor.errors import ConfigError
from storage.words import fold

ROOT = Path(__file__).resolve().parents[1]
RECENT = datetime.now(UTC) - timedelta(hours=30)  # synthetic post n is dated RECENT + n hours
CHARTER = AlertRule("charter", keywords=("Евразийская хартия", "eurasische Charta", "Eurasian charter"),
                    language="ru")


class Receiver:
    """A notification endpoint on loopback: what Apprise's json:// posts, as it arrives."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.fail = 0  # answer 500 to this many requests
        self.stall = 0.0  # hold each request this long before answering
        self.arrived = 0  # requests read, answered or not
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.arrived += 1
                time.sleep(receiver.stall)
                status = 500 if receiver.fail > 0 else 200
                receiver.fail -= 1
                if status == 200:
                    receiver.received.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def rules_toml(receiver: Receiver, extra_rule: str = "") -> str:
    return f"""
[alerts]
notify = ["{receiver.url}"]
retry_backoff = "1s"

[[alerts.rules]]
name = "charter"
keywords = ["Евразийская хартия", "eurasische Charta", "Eurasian charter"]
language = "ru"
{extra_rule}
"""


# The matcher


def test_the_charter_in_three_languages_with_inflections():
    rules = [AlertRule("ru", keywords=("Евразийская хартия",), language="ru"),
             AlertRule("de", keywords=("eurasische Charta",), language="de"),
             AlertRule("en", keywords=("Eurasian charter",), language="en")]
    matcher = Matcher(rules)

    assert [m.rule for m in matcher.match("Проект Евразийской хартии многообразия")] == ["ru"]
    assert [m.rule for m in matcher.match("Hartia: der Eurasischen Charta zugestimmt")] == ["de"]
    assert [m.rule for m in matcher.match("the draft Eurasian Charter's text")] == ["en"]
    assert matcher.match("Eurasian economic charter") == []  # a phrase is consecutive words


def test_folding():
    assert fold("Ёлка") == "елка" and fold("Straße") == "strasse" and fold("Lawrów") == "lawrow"
    matcher = Matcher([AlertRule("r", keywords=("ёлка", "Straße", "Lavrov"))])
    assert [m.terms for m in matcher.match("ЕЛКА, Strasse and LAVRÓV")] == [("ёлка", "Straße", "Lavrov")]


def test_whole_words_by_default_prefixes_on_request():
    whole = Matcher([AlertRule("r", keywords=("Lavrov",))])
    prefix = Matcher([AlertRule("r", keywords=("Лавров",), whole_words=False)])
    assert whole.match("Lavrovich met") == [] and whole.match("Mr Lavrov met") != []
    assert prefix.match("встреча Лаврова") != [] and prefix.match("Слаавров") == []


def test_regex_exclusions_scope_and_channels():
    matcher = Matcher([
        AlertRule("regex", regex=(r"\bBRICS\+?", r"\b\d{3,4}-\d\d-\d\d-\d{4}\b")),
        AlertRule("sanctions", keywords=("sanctions",), exclude=("lifted",)),
        AlertRule("embassy", keywords=("embassy",), channels=("MID_Russia",), scope=("pages",)),
    ])
    [brics] = matcher.match("BRICS+ summit, document 936-14-05-2024")
    assert brics.terms == ("BRICS+", "936-14-05-2024")
    assert matcher.match("new sanctions imposed") != [] and matcher.match("sanctions were lifted") == []
    assert matcher.match("the embassy", scope="pages", channels=["mid_russia"]) != []
    assert matcher.match("the embassy", scope="posts", channels=["MID_Russia"]) == []
    assert matcher.match("the embassy", scope="pages", channels=["MFARussia"]) == []


def test_thousands_of_keywords_match_like_one():
    keywords = tuple(f"keyword{i}" for i in range(5000)) + ("needle",)
    matcher = Matcher([AlertRule("many", keywords=keywords)])
    [match] = matcher.match("a haystack with a needle and keyword4321 in it")
    assert match.terms == ("needle", "keyword4321")


@pytest.mark.parametrize(("rule", "key", "reason"), [
    ('name = "bad"\nregex = ["(unclosed"]', "alerts.rules[bad].regex[0]", "invalid regular expression"),
    ('name = "odd"\nkeywords = ["x"]\nfuzzy = true', "alerts.rules[odd].fuzzy", "unknown key"),
    ('name = "lang"\nkeywords = ["x"]\nlanguage = "xx"', "alerts.rules[lang].language", "expected one of"),
    ('name = "scope"\nkeywords = ["x"]\nscope = ["posts", "likes"]', "alerts.rules[scope].scope", "unknown scope"),
    ('name = "empty"', "alerts.rules[empty].keywords", "needs keywords, regex, or both"),
])
def test_bad_rules_are_config_errors_naming_the_rule(tmp_path, rule, key, reason):
    from monitor.config.settings import load_config
    path = tmp_path / "c.toml"
    path.write_text(f'[[channels]]\nname = "MFARussia"\n[[alerts.rules]]\n{rule}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.key, reason in caught.value.reason) == (key, True)


# Recorded with the content, delivered for real


@pytest.fixture
def watched(tme, make_config, receiver):
    """A channel with recent posts, one of them about the charter, synced once."""

    async def make(extra_rule: str = ""):
        channel = tme.channel("MFARussia")
        for post_id in range(1, 6):
            channel.add(post_id, start=RECENT, text=f"Briefing {post_id} on trade")
        channel.add(6, start=RECENT, text="Lavrov: the draft Eurasian Charter is ready")
        config = make_config("MFARussia", extra=rules_toml(receiver, extra_rule))
        report = await archive_channels(config, ["MFARussia"], mode="sync")
        return channel, config, report

    return make


async def test_a_matching_post_alerts_once_through_a_real_endpoint(watched, receiver, tme):
    _, config, report = await watched()

    assert report.alerts.sent == 1
    [message] = receiver.received
    assert message["title"] == "legation: charter: new post in MFARussia"
    assert message["message"].splitlines() == [
        "Rule: charter (new post)",
        f"Post: {tme.url}/MFARussia/6 ({rows(config.database, 'SELECT date FROM posts WHERE post_id = 6')[0][0]})",
        "Matched: Eurasian charter",
        "Lavrov: the draft Eurasian Charter is ready",
    ]
    again = await archive_channels(config, ["MFARussia"], mode="sync")
    assert again.alerts.sent == 0 and len(receiver.received) == 1
    [(kind, terms, delivered, attempts)] = rows(config.database,
                                                "SELECT kind, terms, delivered_at IS NOT NULL, attempts FROM alerts")
    assert (kind, json.loads(terms), delivered, attempts) == ("post", ["Eurasian charter"], 1, 1)


async def test_edits_alert_when_they_introduce_a_match_not_when_they_keep_it(watched, receiver):
    channel, config, _ = await watched()
    channel.add(3, start=RECENT, text="Briefing 3: Проект Евразийской хартии", edited=True)
    channel.add(6, start=RECENT, text="Lavrov: the draft Eurasian Charter is final", edited=True)

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.alerts.sent == 1
    assert rows(config.database, "SELECT kind, post_id, version FROM alerts ORDER BY id") == [
        ("post", 6, 1), ("edit", 3, 2)]
    assert receiver.received[-1]["title"] == "legation: charter: edited post in MFARussia"
    assert "Rule: charter (edited post, version 2)" in receiver.received[-1]["message"]


async def test_every_change_alerts_on_each_matching_version(watched):
    channel, config, _ = await watched("every_change = true")
    channel.add(6, start=RECENT, text="Lavrov: the draft Eurasian Charter is final", edited=True)
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert rows(config.database, "SELECT kind, version FROM alerts ORDER BY id") == [("post", 1), ("edit", 2)]


async def test_a_deleted_matching_post_alerts(watched, receiver):
    channel, config, _ = await watched()
    channel.delete(6)
    channel.delete(2)  # no match: no alert

    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT kind, post_id FROM alerts ORDER BY id") == [("post", 6), ("deletion", 6)]
    assert receiver.received[-1]["title"] == "legation: charter: deleted post in MFARussia"


async def test_a_matching_page_alerts_and_names_its_posts(tme, make_config, receiver):
    release = (FIXTURES / "sites" / "midru_current.html").read_text(encoding="utf-8")
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", release)
    channel = tme.channel("MFARussia")
    channel.add(1, start=RECENT, text='Заявление МИД <a href="https://mid.ru/ru/foreign_policy/news/1944000/">здесь</a>')
    config = make_config("MFARussia", extra=rules_toml(receiver))

    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT kind, page_url, version FROM alerts") == [
        ("page", "https://mid.ru/ru/foreign_policy/news/1944000/", 1)]
    [message] = receiver.received
    assert message["title"] == "legation: charter: Заявление МИД России в связи с годовщиной Евразийской хартии"
    assert "https://mid.ru/ru/foreign_policy/news/1944000/" in message["message"]
    assert "Matched: Евразийская хартия" in message["message"]


async def test_old_posts_of_a_backfill_do_not_alert(tme, make_config, receiver):
    channel = tme.channel("MFARussia")
    channel.add(1, text="The Eurasian charter, years ago")  # dated 2020
    config = make_config("MFARussia", extra=rules_toml(receiver))
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert rows(config.database, "SELECT count(*) FROM alerts") == [(0,)]


async def test_a_failing_endpoint_is_retried_and_recorded(watched, receiver):
    receiver.fail = 1
    _, config, report = await watched()

    assert (report.alerts.sent, report.alerts.failed) == (0, 1)
    [(attempts, error, retry_at)] = rows(config.database, "SELECT attempts, last_error, next_attempt_at FROM alerts")
    assert attempts == 1 and "error=500" in error and retry_at is not None

    with connect_archive(config.database) as conn:  # the back-off has passed
        conn.execute("UPDATE alerts SET next_attempt_at = '2000-01-01T00:00:00Z'")
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    assert report.alerts.sent == 1 and len(receiver.received) == 1
    assert rows(config.database, "SELECT attempts, last_error, delivered_at IS NOT NULL FROM alerts") == [(2, None, 1)]


async def test_a_digest_rule_sends_one_message_for_many_alerts(tme, make_config, receiver):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 4):
        channel.add(post_id, start=RECENT, text=f"Eurasian charter, part {post_id}")
    config = make_config("MFARussia", extra=rules_toml(receiver, 'digest = "1h"'))
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    assert (report.alerts.sent, report.alerts.held) == (0, 3)

    with connect_archive(config.database) as conn:
        conn.execute("UPDATE alerts SET created_at = '2000-01-01T00:00:00Z'")
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    [digest] = receiver.received
    assert report.alerts.sent == 3 and digest["title"] == "legation: charter: 3 alerts"
    assert digest["message"].count("Rule: charter (new post)") == 3


def test_a_crash_before_delivery_delivers_exactly_once_after_restart(tmp_path, tme, write_config, receiver):
    channel = tme.channel("MFARussia")
    channel.add(1, start=RECENT, text="The Eurasian charter is signed")
    config = write_config("MFARussia", extra=rules_toml(receiver))
    receiver.stall = 30.0  # the first delivery hangs: the process is killed in it
    sync = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "sync"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = load_config(config).database
    deadline = time.monotonic() + 30
    while receiver.arrived == 0:  # the delivery is under way, its alert saved
        assert time.monotonic() < deadline and sync.poll() is None
        time.sleep(0.05)
    assert rows(database, "SELECT count(*), count(delivered_at) FROM alerts") == [(1, 0)]
    os.kill(sync.pid, signal.SIGKILL)
    sync.wait()
    assert receiver.received == []
    receiver.stall = 0.0

    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), "sync"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    assert len(receiver.received) == 1
    assert rows(database, "SELECT count(*), count(delivered_at) FROM alerts") == [(1, 1)]


async def test_alerts_commands(watched, receiver, tme):
    _, config, _ = await watched()

    def run(*args: str):
        return asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), *args])

    listing = await run("alerts")
    assert listing.exit_code == 0
    [line] = listing.stdout.splitlines()
    assert f"charter  post v1  {tme.url}/MFARussia/6  [Eurasian charter]  sent " in line

    yes = await run("alerts", "test", "charter", "Проект Евразийской хартии одобрен")
    no = await run("alerts", "test", "charter", "nothing here")
    unknown = await run("alerts", "test", "nope", "x")
    assert yes.exit_code == 0 and yes.stdout.splitlines()[0] == "charter: matches Евразийская хартия"
    assert no.exit_code == 1 and no.stdout.strip() == "charter: no match"
    assert unknown.exit_code == 2 and "no alert rule named 'nope'" in unknown.stderr

    dry = await run("alerts", "replay", "--since", "2000-01-01")
    assert dry.stdout.splitlines()[-1] == "1 match(es); nothing recorded (use --send)"
    sent = await run("alerts", "replay", "--since", "2000-01-01", "--send")
    assert sent.stdout.splitlines()[-1] == "1 match(es); 0 recorded, 0 sent"  # already alerted
    assert len(receiver.received) == 1


def test_a_backtracking_regex_and_a_hostile_post_cannot_freeze_a_sync(tme, write_config):
    """The rule and post of issue 31: Python's re took minutes; RE2 matches in linear time."""
    channel = tme.channel("MFARussia")
    today = datetime.now(UTC) - timedelta(hours=3)  # recent posts: old ones (a backfill) are not matched
    channel.add(1, text="a" * 34 + "!", start=today)
    channel.add(2, text="Lavrov " * 500 + "!", start=today)
    config = write_config("MFARussia", extra="\n[[alerts.rules]]\nname = \"greedy\"\nregex = ['^(\\w+\\s?)+$']\n"
                                             "scope = [\"posts\"]\n")
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), "sync"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("sync still matching after 60 s")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    assert rows(load_config(config).database, "SELECT count(*) FROM posts") == [(2,)]


@pytest.mark.parametrize("pattern", [r"(a)\1", r"Lavrov(?= said)", r"(?<!not )agreed"])
def test_a_regex_re2_cannot_run_is_a_config_error_naming_the_rule(write_config, pattern):
    config = write_config("MFARussia", extra=f"\n[[alerts.rules]]\nname = \"back\"\nregex = ['ok', '{pattern}']\n")
    result = CliRunner().invoke(cli, ["-c", str(config), "status"])
    assert result.exit_code == 2
    assert result.stderr.startswith("legation: config error: alerts.rules[back].regex[1]: invalid regular expression")
    assert "RE2" in result.stderr


class Trickle:
    """A webhook that answers one header line a second and never finishes its answer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.arrived = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.listener.getsockname()[1]}/hook"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        self.arrived += 1
        with contextlib.suppress(OSError), conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for n in range(120):
                if self.stop.wait(1.0):
                    return
                conn.sendall(f"X-Slow-{n}: yes\r\n".encode())

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def test_a_webhook_that_trickles_is_a_failed_delivery_and_does_not_hold_the_daemon(tmp_path, tme, write_config):
    trickle = Trickle()
    channel = tme.channel("MFARussia")
    channel.add(1, start=RECENT, text="The Eurasian charter is signed")
    config = write_config("MFARussia", extra=f"""
[alerts]
notify = ["{trickle.url}"]
deliver_interval = "3s"
delivery_timeout = "2s"
retry_backoff = "1s"

[[alerts.rules]]
name = "charter"
keywords = ["Eurasian charter"]
""")
    daemon = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "--log-format", "json", "run"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    database = load_config(config).database
    try:
        deadline = time.monotonic() + 30
        while not read_only(database, "SELECT 1 FROM alerts WHERE attempts >= 2"):
            assert time.monotonic() < deadline and daemon.poll() is None, "no failed attempt recorded"
            time.sleep(0.2)
        [(error, delivered)] = rows(database, "SELECT last_error, delivered_at FROM alerts")
        assert error == "no answer within 2 s (delivery_timeout)" and delivered is None
        stopped_at = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert time.monotonic() - stopped_at < 15
        assert daemon.returncode == 0
        # the delivery never outlived its turn (a first poll may, on a slower engine: not the point here)
        assert not [line for line in stderr.splitlines()
                    if "maximum number of running instances" in line and 'job "alerts' in line], stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
        trickle.close()


async def test_a_digest_whose_alerts_keep_trickling_in_is_sent_once_the_oldest_is_due(tme, make_config, receiver):
    """A digest waits for its oldest alert's period, not its newest's: alerts arriving every few
    minutes must not hold the digest for ever."""
    channel = tme.channel("MFARussia")
    channel.add(1, start=RECENT, text="Eurasian charter, part 1")
    config = make_config("MFARussia", extra=rules_toml(receiver, 'digest = "1h"'))
    await archive_channels(config, ["MFARussia"], mode="sync")
    with connect_archive(config.database) as conn:  # the first alert is an hour and a minute old
        conn.execute("UPDATE alerts SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-61 minutes')")
    channel.add(2, start=RECENT, text="Eurasian charter, part 2")  # and one came just now

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.alerts.sent == 2 and len(receiver.received) == 1
