"""Several `legation run` processes on one PostgreSQL archive share the work: each channel's poll,
the page queue and alert delivery are one worker's at a time (storage/leases.py), a worker killed
with kill -9 has its channels taken over within the lease, nothing is archived or alerted twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from helpers import ROOT, read_only, rows, wait_for
from pgserver import server_binaries
from test_alerts import Receiver

pytestmark = pytest.mark.skipif(server_binaries() is None and not os.environ.get("LEGATION_TEST_POSTGRES"),
                                reason="no PostgreSQL server binaries (apt install postgresql)")
CHANNELS = 30
ALERTED = 8  # channels whose posts 1 and 4 mention the charter: an alert each (Apprise sends them one by one)
RECENT = datetime.now(UTC) - timedelta(hours=20)


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def worker_config(tmp_path, tme, pg_url, receiver, n: int):
    ca = tme.write_ca(tmp_path / "ca.pem")
    path = tmp_path / f"worker{n}.toml"
    path.write_text(
        f'database = "{pg_url}"\n[telegram]\nweb_url = "{tme.url}"\n'
        f'[network]\nrequest_delay = "0s"\nretry_backoff = "50ms"\nmax_retries = 1\ntimeout = "3s"\n'
        f'proxy = "{tme.url}"\nca_bundle = "{ca}"\nallow_private_addresses = true\n'
        # polls far apart: what is taken over, is taken over by the heartbeat, not at the next turn
        '[schedule]\npoll_interval = "60s"\npages_interval = "1s"\nshutdown_timeout = "5s"\nlease_ttl = "3s"\n'
        f'[media]\ndir = "{tmp_path / "media"}"\ndownload = []\n'
        f'[alerts]\nnotify = ["{receiver.url}"]\ndeliver_interval = "1s"\n'
        '[[alerts.rules]]\nname = "charter"\nkeywords = ["хартия"]\nlanguage = "ru"\n'
        + "".join(f'[[channels]]\nname = "embassy{c}"\n' for c in range(CHANNELS)),
        encoding="utf-8")
    return path


def start(config):
    return subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "run"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def alerted_posts(receiver: Receiver) -> list[str]:
    return [m for body in receiver.received for m in re.findall(r"/(embassy\d+/\d+)", body.get("message", ""))]


def test_three_workers_share_the_channels_and_take_over_a_killed_one(tme, pg_url, tmp_path, receiver):
    embassies = [tme.channel(f"embassy{c}") for c in range(CHANNELS)]
    for c, channel in enumerate(embassies):
        for post_id in (1, 2, 3):
            channel.add(post_id, text=f"Посольство {c}: заявление {post_id}" + (" о хартии" if post_id == 1 and c < ALERTED
                                                                                  else ""), start=RECENT)
    workers = [start(worker_config(tmp_path, tme, pg_url, receiver, n)) for n in range(3)]
    try:
        wait_for(lambda: read_only(pg_url, "SELECT count(*) FROM posts") == [(CHANNELS * 3,)], 90)
        wait_for(lambda: len(alerted_posts(receiver)) >= ALERTED, 60)
        # sent and marked: the kill below must not fall between the two (a resend there is at least once)
        wait_for(lambda: read_only(pg_url, "SELECT count(*) FROM alerts WHERE delivered_at IS NULL") == [(0,)], 90)
        # the three share the channels (those first to start give up what is beyond their share)
        wait_for(lambda: len(read_only(pg_url, "SELECT holder FROM leases WHERE name LIKE 'poll:%' GROUP BY holder")) == 3,
                 90)
        held = dict(rows(pg_url, "SELECT holder, count(*) FROM leases WHERE name LIKE 'poll:%' GROUP BY holder"))
        assert len(held) == 3 and all(1 <= count <= CHANNELS // 3 + 1 for count in held.values()), held
        pids = {holder: int(holder.split(":")[1]) for holder in held}

        victim = workers[0]
        victim_id = next(holder for holder, pid in pids.items() if pid == victim.pid)
        orphaned = {name for (name,) in rows(pg_url, "SELECT name FROM leases WHERE holder = ? AND name LIKE 'poll:%'",
                                               victim_id)}
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        for name in orphaned:  # a new post in each of the victim's channels, all mentioning the charter
            embassies[int(name.removeprefix("poll:embassy"))].add(4, text="Новое заявление о хартии",
                                                                    start=RECENT + timedelta(hours=5))
        # within the lease (3 s) and a heartbeat, not the next poll a minute away: the survivors poll them
        wait_for(lambda: read_only(pg_url, "SELECT count(*) FROM posts") == [(CHANNELS * 3 + len(orphaned),)], 20)
        taken = {name for (name,) in rows(pg_url, "SELECT name FROM leases WHERE holder <> ?", victim_id)}
        assert orphaned <= taken
        wait_for(lambda: len(alerted_posts(receiver)) >= ALERTED + len(orphaned), 60)
        # each sent, and marked sent (the step after sending) before the workers are stopped
        wait_for(lambda: read_only(pg_url, "SELECT count(*) FROM alerts WHERE delivered_at IS NULL") == [(0,)], 90)
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    # nothing twice: one row a post, no second version, one alert a post, each sent once
    total = CHANNELS * 3 + len(orphaned)
    assert rows(pg_url, "SELECT count(*), count(DISTINCT channel_id || '/' || post_id) FROM posts") == [(total, total)]
    assert rows(pg_url, "SELECT count(*) FROM post_history") == [(0,)]
    alerts = ALERTED + len(orphaned)
    assert rows(pg_url, "SELECT count(*), count(delivered_at) FROM alerts") == [(alerts, alerts)]
    sent = alerted_posts(receiver)
    assert len(sent) == len(set(sent)) == alerts
    # the survivors left; the victim's record stays (its heartbeat stopped) until ten leases have passed
    assert rows(pg_url, "SELECT id FROM workers") == [(victim_id,)]
