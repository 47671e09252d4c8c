"""`legation run` as a real subprocess against the loopback t.me: rounds, signals, crashes, outages."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import read_only, wait_for
from tmeserver import FakeTelegram

from storage.models import utc_in

ROOT = Path(__file__).resolve().parents[1]
RECENT = datetime.now(UTC) - timedelta(hours=40)  # synthetic post n is dated RECENT + n hours

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, tme: FakeTelegram, name: str = "daemon") -> Path:
    ca = tme.write_ca(tmp_path / "ca.pem")
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'database = "{tmp_path / name}.sqlite3"\n[telegram]\nweb_url = "{tme.url}"\n'
        f'[network]\nrequest_delay = "0s"\nretry_backoff = "50ms"\nmax_retries = 1\ntimeout = "3s"\n'
        f'proxy = "{tme.url}"\nca_bundle = "{ca}"\nallow_private_addresses = true\n'
        '[schedule]\npoll_interval = "1s"\npages_interval = "1s"\nshutdown_timeout = "5s"\n'
        '[[channels]]\nname = "ministry"\n',
        encoding="utf-8",
    )
    return path


def legation(config: Path, *args: str, stderr: Path | None = None) -> subprocess.Popen[bytes]:
    err = stderr.open("wb") if stderr else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)
    finally:
        if stderr:
            err.close()  # type: ignore[union-attr]


def legation_once(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A one-shot command, to its end."""
    return subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def query(config: Path, sql: str) -> list[tuple]:
    return read_only(archive_of(config), sql)


def archive_of(config: Path) -> Path | str:
    """The archive a config file names (an SQLite file, or a PostgreSQL URL)."""
    from monitor.config.settings import load_config

    return load_config(config).database


def posts(config: Path) -> int:
    return (query(config, "SELECT count(*) FROM posts") or [(0,)])[0][0]


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def channel_with(tme: FakeTelegram, count: int):
    channel = tme.channel("ministry")
    for post_id in range(1, count + 1):
        channel.add(post_id, start=RECENT)
    return channel


def test_run_archives_over_rounds_and_stops_cleanly_on_sigterm(tmp_path, tme, daemons):
    channel = channel_with(tme, 30)
    config = write_config(tmp_path, tme)
    log = tmp_path / "daemon.log"
    daemons.append(daemon := legation(config, "run", stderr=log))
    wait_for(lambda: posts(config) == 30)
    for post_id in range(31, 36):
        channel.add(post_id, start=RECENT)
    wait_for(lambda: posts(config) == 35)

    healthy = legation_once(config, "status")
    started = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0
    assert time.monotonic() - started < 10

    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]  # JSON lines: not a terminal
    names = [e["event"] for e in events]
    assert names[-1] == "daemon_stopped"
    assert names.index("signal_received") < names.index("daemon_stopping") < names.index("daemon_stopped")
    assert any(e["event"] == "channel_synced" and e.get("job") == "poll:ministry" for e in events)
    assert query(config, "SELECT count(*) FROM runs WHERE job = 'poll:ministry' AND outcome = 'ok'")[0][0] >= 2
    assert query(config, "SELECT count(*) FROM runs WHERE finished_at IS NULL") == [(0,)]
    assert query(config, "SELECT backfill_done_at IS NOT NULL FROM channels") == [(1,)]


def test_a_second_writer_is_refused_while_readers_read(tmp_path, tme, daemons):
    channel_with(tme, 10)
    config = write_config(tmp_path, tme)
    daemons.append(daemon := legation(config, "run"))
    wait_for(lambda: posts(config) == 10)

    second_run, sync, search, status = (legation_once(config, "run"), legation_once(config, "sync"),
                                        legation_once(config, "search", "charter"),
                                        legation_once(config, "status", "--json"))

    for refused in (second_run, sync):
        assert refused.returncode == 1
        assert f"is writing to {config.with_suffix('.sqlite3')}" in refused.stderr
    assert search.returncode == 0 and "ministry/10" in search.stdout
    assert json.loads(status.stdout)["channels"][0]["posts"] == 10
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0


def snapshot(config: Path) -> list[list[tuple]]:
    with sqlite3.connect(config.with_suffix(".sqlite3")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [
            conn.execute("SELECT post_id, text, version, content_hash FROM posts ORDER BY post_id").fetchall(),
            conn.execute("SELECT post_id, version, content_hash FROM post_versions ORDER BY 1, 2").fetchall(),
            conn.execute("SELECT post_id, url, kind FROM links ORDER BY 1, 2, 3").fetchall(),
            conn.execute("SELECT head_id, tail_id, backfill_done_at IS NOT NULL FROM channels").fetchall(),
        ]


def test_kill_9_mid_round_then_restart_equals_an_uninterrupted_run(tmp_path, tme, daemons):
    channel_with(tme, 300)
    tme.delay = 0.02
    reference = write_config(tmp_path, tme, "reference")
    done = legation_once(reference, "backfill", timeout=120)
    assert done.returncode == 0, done.stderr
    config = write_config(tmp_path, tme)

    daemons.append(first := legation(config, "run"))
    wait_for(lambda: posts(config) >= 120)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    daemons.append(second := legation(config, "run"))
    wait_for(lambda: query(config, "SELECT backfill_done_at IS NOT NULL FROM channels") == [(1,)], timeout=60)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0

    assert snapshot(config) == snapshot(reference)


def test_an_outage_is_logged_and_recovered_from(tmp_path, tme, daemons):
    channel = channel_with(tme, 5)
    config = write_config(tmp_path, tme)
    log = tmp_path / "daemon.log"
    daemons.append(daemon := legation(config, "run", stderr=log))
    wait_for(lambda: posts(config) == 5)

    tme.outage = lambda path: True
    wait_for(lambda: query(config, "SELECT last_error IS NOT NULL FROM channels") == [(1,)])
    channel.add(6, start=RECENT)
    time.sleep(1.0)
    assert daemon.poll() is None and posts(config) == 5
    tme.outage = None
    wait_for(lambda: posts(config) == 6)
    wait_for(lambda: query(config, "SELECT last_error FROM channels") == [(None,)])

    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(e["event"] == "channel_failed" and "503" in e["error"] for e in events)


@pytest.mark.parametrize(("command", "signum"), [("backfill", signal.SIGTERM), ("sync", signal.SIGHUP)])
def test_a_one_shot_command_stopped_by_a_signal_says_so_and_resumes(tmp_path, tme, daemons, command, signum):
    channel_with(tme, 200)
    tme.delay = 0.3  # each page takes a while: the signal lands mid-walk
    config = write_config(tmp_path, tme)
    log = tmp_path / "err.log"
    daemons.append(process := legation(config, command, stderr=log))
    wait_for(lambda: posts(config) >= 20)

    process.send_signal(signum)

    assert process.wait(timeout=15) == 130
    lines = log.read_text().splitlines()
    assert "Traceback" not in log.read_text()
    assert lines[-1] == (f"legation: stopped by {signal.Signals(signum).name}; nothing half-written was kept, "
                         "run the same command again to resume")
    tme.delay = 0.0
    again = legation_once(config, "backfill")
    assert again.returncode == 0, again.stderr
    assert query(config, "SELECT count(*), min(post_id), max(post_id) FROM posts") == [(200, 1, 200)]


def test_sighup_stops_the_daemon_cleanly_and_every_run_has_an_outcome(tmp_path, tme, daemons):
    channel_with(tme, 200)
    tme.delay = 0.3
    config = write_config(tmp_path, tme)
    daemons.append(daemon := legation(config, "run"))
    wait_for(lambda: posts(config) >= 20)

    daemon.send_signal(signal.SIGHUP)

    assert daemon.wait(timeout=20) == 0
    assert query(config, "SELECT count(*) FROM runs WHERE finished_at IS NULL OR outcome IS NULL") == [(0,)]


def test_a_job_cut_off_at_shutdown_is_recorded_as_stopped(tmp_path, tme, daemons):
    channel_with(tme, 30)
    config = write_config(tmp_path, tme)
    config.write_text(config.read_text().replace('shutdown_timeout = "5s"', 'shutdown_timeout = "500ms"'))
    daemons.append(daemon := legation(config, "run"))
    wait_for(lambda: posts(config) == 30)
    asked = len(tme.page_requests())
    tme.delay = 2.5  # the next poll hangs in a request longer than the shutdown allows
    # a request that arrives now hangs; a run still open from before the delay (the first poll
    # writing its posts, a pages round) would finish in time and prove nothing
    wait_for(lambda: len(tme.page_requests()) > asked)
    time.sleep(0.2)

    daemon.send_signal(signal.SIGTERM)

    assert daemon.wait(timeout=20) == 0
    assert query(config, "SELECT count(*) FROM runs WHERE finished_at IS NULL OR outcome IS NULL") == [(0,)]
    assert ("stopped", "stopped at shutdown") in query(config, "SELECT outcome, error FROM runs")


def test_sigterm_while_a_request_hangs_stops_at_once_and_quietly(tmp_path, tme, daemons):
    """The request under way is abandoned when the stop comes: no wait for the shutdown timeout
    (10 s here), no error-level line, no traceback (log alerting would trip on every stop)."""
    channel_with(tme, 30)
    config = write_config(tmp_path, tme)
    config.write_text(config.read_text().replace('shutdown_timeout = "5s"', 'shutdown_timeout = "10s"')
                      .replace('timeout = "3s"', 'timeout = "30s"'))
    log = tmp_path / "daemon.log"
    daemon = legation(config, "--log-format", "json", "run", stderr=log)
    daemons.append(daemon)
    wait_for(lambda: posts(config) == 30)
    asked = len(tme.page_requests())
    tme.delay = 20.0
    wait_for(lambda: len(tme.page_requests()) > asked)
    time.sleep(0.2)
    stopped = time.monotonic()

    daemon.send_signal(signal.SIGTERM)

    daemon.wait(timeout=20)
    stderr = log.read_text()
    assert daemon.returncode == 0 and time.monotonic() - stopped < 3
    assert "Traceback" not in stderr and '"level": "error"' not in stderr, stderr[-2000:]


def test_a_poll_whose_channel_failed_is_a_failed_run(tmp_path, tme, daemons):
    config = write_config(tmp_path, tme)  # "ministry" has no public preview on this t.me
    daemons.append(daemon := legation(config, "run"))
    wait_for(lambda: bool(query(config, "SELECT 1 FROM runs WHERE job = 'poll:ministry' AND finished_at IS NOT NULL")))
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0
    [(outcome, error)] = query(config, "SELECT outcome, error FROM runs WHERE job = 'poll:ministry' LIMIT 1")
    assert outcome == "failed" and "no public web preview" in error


def test_the_daemon_queues_pages_only_for_the_domains_it_follows_now(tmp_path, tme, daemons):
    """Domains dropped from [pages] follow are forgotten when the daemon starts, before it saves
    a post: links to them no longer join the queue."""
    channel = tme.channel("ministry")
    channel.add(1, start=RECENT, text='Заявление <a href="https://mid.ru/ru/1/">здесь</a>')
    config = write_config(tmp_path, tme)  # [pages] follow: the default, mid.ru
    sync = legation_once(config, "sync")
    assert sync.returncode == 0, sync.stderr
    assert query(config, "SELECT url FROM pages") == [("https://mid.ru/ru/1/",)]

    config.write_text(config.read_text(encoding="utf-8").replace(
        "[[channels]]", '[pages]\nfollow = []\n[[channels]]'), encoding="utf-8")
    channel.add(2, start=RECENT, text='Заявление <a href="https://mid.ru/ru/2/">здесь</a>')
    daemons.append(legation(config, "run"))
    wait_for(lambda: posts(config) == 2)
    assert query(config, "SELECT url FROM pages") == [("https://mid.ru/ru/1/",)]
    assert query(config, "SELECT count(*) FROM followed_domains") == [(0,)]


DAY = 86400.0


def _old_runs(config: Path, count: int) -> None:
    """``count`` runs of a year ago and one of yesterday, as a daemon would have left them."""
    with sqlite3.connect(config.with_suffix(".sqlite3")) as conn:
        conn.executemany("INSERT INTO runs (job, started_at, finished_at, outcome) VALUES (?, ?, ?, 'ok')",
                         [("pages", utc_in(-365 * DAY), utc_in(-365 * DAY))] * count)
        conn.execute("INSERT INTO runs (job, started_at, finished_at, outcome) VALUES ('recheck', ?, ?, 'ok')",
                     (utc_in(-DAY), utc_in(-DAY)))


def test_runs_older_than_forget_runs_after_are_deleted(tmp_path, tme, daemons):
    """A run a minute (pages) and one every five (each poll) kept for good would outgrow the
    posts: the daemon deletes runs older than 30 days (the default), many transactions' worth."""
    channel_with(tme, 3)
    config = write_config(tmp_path, tme)
    done = legation_once(config, "sync")
    assert done.returncode == 0, done.stderr
    _old_runs(config, 12_000)

    daemons.append(daemon := legation(config, "run"))
    wait_for(lambda: bool(query(config, "SELECT 1 FROM runs WHERE job = 'forget-runs' AND outcome IS NOT NULL")))
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0

    assert query(config, "SELECT counts FROM runs WHERE job = 'forget-runs'") == [('{"deleted": 12000}',)]
    assert query(config, f"SELECT count(*) FROM runs WHERE started_at < '{utc_in(-30 * DAY)}'") == [(0,)]
    # yesterday's sweep is kept (and, a day old, the sweep is due again: it may have run since)
    assert query(config, f"SELECT count(*) FROM runs WHERE job = 'recheck' AND started_at < '{utc_in(-DAY / 2)}'"
                 ) == [(1,)]


def test_forget_runs_after_never_keeps_every_run(tmp_path, tme, daemons):
    channel_with(tme, 3)
    config = write_config(tmp_path, tme)
    config.write_text(config.read_text().replace("[schedule]\n", '[schedule]\nforget_runs_after = "never"\n'))
    done = legation_once(config, "sync")
    assert done.returncode == 0, done.stderr
    _old_runs(config, 10)

    daemons.append(daemon := legation(config, "run"))
    # polls every 500 ms: by the second, a job installed at start-up would have run
    wait_for(lambda: query(config, "SELECT count(*) FROM runs WHERE job = 'poll:ministry' "
                                   "AND outcome IS NOT NULL")[0][0] >= 2)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0
    assert query(config, f"SELECT count(*) FROM runs WHERE started_at < '{utc_in(-30 * DAY)}'") == [(10,)]
    assert query(config, "SELECT count(*) FROM runs WHERE job = 'forget-runs'") == [(0,)]


def test_the_archive_deleted_under_a_running_daemon_stops_it_with_a_clear_error(tmp_path, tme, daemons):
    channel_with(tme, 5)
    config = write_config(tmp_path, tme)
    log = tmp_path / "daemon.log"
    daemon = legation(config, "run", stderr=log)
    daemons.append(daemon)
    wait_for(lambda: posts(config) == 5)
    database = tmp_path / "daemon.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)

    assert daemon.wait(timeout=30) == 1
    said = log.read_text()
    assert f"legation: the archive file {database} was deleted while legation ran; legation stopped" in said
    assert "Traceback" not in said
