"""Network faults: rounds under a seeded storm of faults lose nothing and invent nothing."""

from __future__ import annotations

import gzip
import random
import re
import sqlite3

import pytest
from tmeserver import Fault

from monitor.daemon.service import archive_channels

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
ROUNDS = 30
SEED = 7


def storm(rng: random.Random, page: bytes) -> list[Fault]:
    """A random sequence of what networks and servers do wrong."""
    kinds = [
        Fault(429, {"Retry-After": "0"}),
        Fault(429),
        Fault(500), Fault(502), Fault(503),
        Fault(200, {"Content-Type": "text/html"}, page, stall=2.0),  # past the 1s timeout
        Fault(200, {"Content-Type": "text/html"}, page, cut=len(page) // 3),  # dropped mid-body
        Fault(200, {"Content-Type": "text/html"}, page[: len(page) // 2]),  # truncated HTML, complete transfer
        Fault(200, {"Content-Type": "application/octet-stream"}, bytes(rng.randrange(256) for _ in range(2048))),
        Fault(200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, gzip.compress(b"\0" * 8_000_000)),
        Fault(302, {"Location": "/s/faulty"}),  # a redirect loop
        Fault(200, {"Content-Type": "text/html"}, b"<html>" + b"x" * 3_000_000 + b"</html>"),  # over the size cap
    ]
    return [rng.choice(kinds) for _ in range(rng.randrange(0, 6))]


REASONS = re.compile(r"HTTP \d{3}|Timeout|ReadError|RemoteProtocolError|truncated page|exceeds|redirects|"
                     r"not valid|no public web preview|not a channel preview page|ConnectError|could not be parsed")


async def test_a_fault_storm_marks_nothing_deleted_or_changed(tme, make_config):
    channel = tme.channel("faulty")
    for post_id in range(1, 61):
        channel.add(post_id)
    config = make_config("faulty", extra='\n[sync]\nrecheck_posts = 60\nrecheck_age = "3650d"\n')
    config = type(config)(**{**{f: getattr(config, f) for f in config.__slots__},
                             "network": type(config.network)(**{
                                 **{f: getattr(config.network, f) for f in config.network.__slots__},
                                 "timeout": 1.0, "max_retries": 2, "max_response_size": 1_000_000})})
    [first] = (await archive_channels(config, ["faulty"], mode="backfill")).channels
    assert first.error is None
    page = channel.render(None).encode()
    rng = random.Random(SEED)
    failures = injected = 0

    for _ in range(ROUNDS):
        faults = storm(rng, page)
        injected += len(faults)
        tme.faults.extend(faults)
        [outcome] = (await archive_channels(config, ["faulty"], mode="sync")).channels
        failures += outcome.error is not None
        tme.faults.clear()
        if outcome.error is not None:  # a failed round is recorded with its reason, for status
            with sqlite3.connect(config.database) as conn:
                assert conn.execute("SELECT last_error FROM channels").fetchone() == (outcome.error,)
            assert REASONS.search(outcome.error), outcome.error
        with sqlite3.connect(config.database) as conn:
            assert conn.execute("SELECT count(*), max(version) FROM posts").fetchone() == (60, 1)
            assert conn.execute("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM deletion_candidates").fetchone() == (0,)

    [calm] = (await archive_channels(config, ["faulty"], mode="sync")).channels
    assert calm.error is None
    assert injected > 40 and failures > 0, (injected, failures)
