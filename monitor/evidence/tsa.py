"""Asking RFC 3161 time-stamping authorities to sign the evidence chain's newest record.

One request an authority an interval (``[evidence] stamp_interval``, hourly by default), and only
when something was captured since its last stamp: the newest record's hash covers, through the
chain, every record before it, whatever the volume. An authority that is down or answers wrong is
asked again after a back-off (a minute, doubling up to the interval); capture never waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from monitor.config.settings import EvidenceConfig
from monitor.errors import FetchError
from monitor.net.client import HttpClient
from storage.db import Connection, transaction
from storage.evidence import get_chain_head, get_last_stamps, save_stamp
from storage.models import age_of, utc_now
from storage.tokens import check_token, stamped_message, trust_roots

log = structlog.get_logger(__name__)

FIRST_RETRY = 60.0  # seconds after a failed request; doubles each time, up to stamp_interval
TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"


def tsa_name(url: str) -> str:
    """An authority's URL as the archive records it: without credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class StampFailed(Exception):
    """An authority gave no usable time-stamp (the reason in words)."""


@dataclass
class Stamper:
    """Time-stamps the chain's head with each configured authority when one is due."""

    conn: Connection
    client: HttpClient
    config: EvidenceConfig
    _retry_at: dict[str, float] = field(default_factory=dict)  # monotonic time an authority may be asked again
    _failures: dict[str, int] = field(default_factory=dict)

    async def run(self, *, force: bool = False) -> Mapping[str, Any]:
        """Ask each due authority; ``force`` asks every one whose last stamp is older than the head."""
        head = await self.conn.run(get_chain_head)
        counts: dict[str, Any] = {"stamped": 0, "failed": 0, "current": 0}
        if head is None:
            return counts
        last = await self.conn.run(get_last_stamps)
        errors = []
        for url in self.config.tsa:
            name = tsa_name(url)
            stamped_seq, stamped_at = last.get(name, (0, None))
            if stamped_seq >= head[0]:
                counts["current"] += 1  # nothing captured since its last stamp
                continue
            if not force and not self._due(name, stamped_at):
                continue
            try:
                await self._stamp(url, name, head)
            except StampFailed as exc:
                counts["failed"] += 1
                errors.append(f"{name}: {exc}")
                self._failed(name)
                log.warning("timestamp_failed", tsa=name, error=str(exc), retry_in=round(self._wait(name)))
            else:
                counts["stamped"] += 1
                self._failures.pop(name, None)
                self._retry_at.pop(name, None)
        if errors:
            counts["error"] = "; ".join(errors)
        return counts

    def _due(self, name: str, stamped_at: str | None) -> bool:
        if time.monotonic() < self._retry_at.get(name, 0.0):
            return False
        if stamped_at is None or name in self._failures:
            return True
        return age_of(stamped_at) >= self.config.stamp_interval

    def _wait(self, name: str) -> float:
        return min(self.config.stamp_interval, FIRST_RETRY * 2 ** (self._failures.get(name, 1) - 1))

    def _failed(self, name: str) -> None:
        self._failures[name] = self._failures.get(name, 0) + 1
        self._retry_at[name] = time.monotonic() + self._wait(name)

    async def _stamp(self, url: str, name: str, head: tuple[int, str]) -> None:
        from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

        seq, record_hash = head
        request = (TimestampRequestBuilder().data(stamped_message(record_hash)).hash_algorithm(HashAlgorithm.SHA256)
                   .nonce(nonce=True).cert_request(cert_request=True).build())
        try:
            response = await self.client.request(
                "POST", url, headers={"Content-Type": TIMESTAMP_QUERY, "Accept": TIMESTAMP_REPLY},
                content=request.as_bytes(), retry=False)
        except FetchError as exc:  # its reason only: its URL is the configured one, credentials and all
            raise StampFailed(exc.reason) from None
        if response.status != 200:
            raise StampFailed(f"HTTP {response.status}")
        checked = check_token(response.content, record_hash, trust_roots(self.config.tsa_ca), request.nonce)
        if not checked.ok:
            raise StampFailed(f"its answer {checked.problem}")
        assert checked.gen_time is not None
        async with transaction(self.conn):
            await self.conn.run(save_stamp, name, seq, record_hash, checked.gen_time, checked.signer,
                                response.content, utc_now())
        log.info("timestamped", tsa=name, record=seq, gen_time=checked.gen_time, signer=checked.signer)

