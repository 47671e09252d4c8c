"""The evidence chain: an append-only hash chain over what was captured, and its verification.

Each post version, confirmed deletion, release page version and media file gets a record: the SHA-256 of
its canonical content (below), the capture time, and the hash of the record before it. The
record's own hash covers all of that, so that editing an archived row (its content no longer
hashes to the record), dropping one (its record points at nothing), or reordering or removing
records (the links break) is found by :func:`verify_chain`. The first record of an archive is a
genesis record: rows archived before it are outside the chain, and said so.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.models import page_content_hash

GENESIS_PREV = "0" * 64


def digest(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces, UTF-8)."""
    blob = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def post_content(text: str | None, html: str | None, media: str | None, link_preview: str | None,
                 forwarded_from: str | None, buttons: str | None) -> str:
    """A post version's content as archived (the columns of ``post_versions``)."""
    return digest(["post", text, html, media, link_preview, forwarded_from, buttons])


def deletion_content(channel_id: int, post_id: int, at: str, detail: str | None) -> str:
    return digest(["deletion", channel_id, post_id, at, detail])


def page_content(url: str, version: int, raw_sha256: str, content_hash: str) -> str:
    return digest(["page", url, version, raw_sha256, content_hash])


def media_content(sha256: str, size: int, path: str) -> str:
    """A stored media file: its bytes' SHA-256 (its name), size and place under [media] dir."""
    return digest(["media", sha256, size, path])


def _record_hash(seq: int, kind: str, ref: str, content_hash: str, at: str, prev: str) -> str:
    return digest([seq, kind, ref, content_hash, at, prev])


def append_records(db: sqlite3.Connection, records: Sequence[tuple[str, str, str]], now: str) -> None:
    """Append ``(kind, ref, content hash)`` records captured at ``now``, in order (a genesis record
    first, in an archive that has none). Part of the transaction that saves what they describe."""
    if not records:
        return
    last = db.execute("SELECT seq, hash FROM evidence_chain ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS_PREV)
    rows = []
    if last is None:
        records = [("genesis", "legation", digest(["genesis", now]))] + list(records)
    for kind, ref, content_hash in records:
        seq += 1
        record = _record_hash(seq, kind, ref, content_hash, now, prev)
        rows.append((seq, kind, ref, content_hash, now, prev, record))
        prev = record
    db.executemany("INSERT INTO evidence_chain (seq, kind, ref, content_hash, captured_at, prev_hash, hash) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def get_chain_head(db: sqlite3.Connection) -> tuple[int, str] | None:
    """The newest record's ``(seq, hash)``: what a time-stamp of the chain signs."""
    row = db.execute("SELECT seq, hash FROM evidence_chain ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else None


def get_last_stamps(db: sqlite3.Connection) -> dict[str, tuple[int, str]]:
    """Each authority's newest time-stamp: ``tsa -> (seq, requested_at)``."""
    return {tsa: (seq, at) for tsa, seq, at in db.execute(
        "SELECT tsa, max(seq), max(requested_at) FROM evidence_stamps GROUP BY tsa")}


def save_stamp(db: sqlite3.Connection, tsa: str, seq: int, record_hash: str, gen_time: str, signer: str | None,
               token: bytes, now: str) -> None:
    db.execute("INSERT INTO evidence_stamps (tsa, seq, hash, gen_time, signer, token, requested_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (tsa, seq, record_hash, gen_time, signer, token, now))


@dataclass(frozen=True, slots=True)
class EvidenceState:
    """For ``status``: the chain's length, its newest time-stamp, and since when records wait for one."""

    records: int
    stamped_seq: int | None  # the newest record a time-stamp covers
    stamped_at: str | None  # that stamp's time, by its authority
    stamped_by: str | None
    unstamped_since: str | None  # capture time of the oldest record no stamp covers


def get_evidence_state(db: sqlite3.Connection) -> EvidenceState:
    head = get_chain_head(db)
    newest = db.execute("SELECT seq, gen_time, tsa FROM evidence_stamps ORDER BY seq DESC, id DESC LIMIT 1").fetchone()
    stamped_seq = newest[0] if newest else 0
    waiting = db.execute("SELECT captured_at FROM evidence_chain WHERE seq > ? ORDER BY seq LIMIT 1",
                         (stamped_seq,)).fetchone()
    return EvidenceState(head[0] if head else 0, newest[0] if newest else None, newest[1] if newest else None,
                         newest[2] if newest else None, waiting[0] if waiting else None)


@dataclass(frozen=True, slots=True)
class Stamp:
    """A time-stamp as the archive holds it."""

    id: int
    tsa: str
    seq: int
    hash: str
    gen_time: str
    signer: str | None
    token: bytes


def get_stamps(db: sqlite3.Connection, from_seq: int = 0) -> list[Stamp]:
    return [Stamp(*row) for row in db.execute(
        "SELECT id, tsa, seq, hash, gen_time, signer, token FROM evidence_stamps WHERE seq >= ? ORDER BY seq, id",
        (from_seq,))]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``verify`` found: the records and time-stamps checked, and each problem in words."""

    records: int
    problems: tuple[str, ...]
    newest_hash: str | None
    stamps: int = 0
    newest_stamp: str | None = None  # "record N at TIME by SIGNER"

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(db: sqlite3.Connection, media_dir: Path | None = None,
                 roots: tuple[Any, ...] = ()) -> Verdict:
    """The chain end to end: each record's hash, its link to the one before, the archived row it
    describes hashing to its content hash (a media file's bytes too, read from ``media_dir``),
    every post version and page version captured since the chain began having a record, and every
    time-stamp signing its record's hash under ``roots`` (storage.tokens.trust_roots)."""
    problems: list[str] = []
    prev, expected_seq, since, records, newest = GENESIS_PREV, 1, None, 0, None
    covered: set[tuple[str, str]] = set()
    for seq, kind, ref, content_hash, at, prev_hash, record in db.execute(
            "SELECT seq, kind, ref, content_hash, captured_at, prev_hash, hash FROM evidence_chain ORDER BY seq"):
        records += 1
        if seq != expected_seq:
            problems.append(f"chain record {expected_seq} is missing (the next is {seq})")
        if prev_hash != prev:
            problems.append(f"chain record {seq} does not follow the record before it (records removed or reordered)")
        if _record_hash(seq, kind, ref, content_hash, at, prev_hash) != record:
            problems.append(f"chain record {seq} was altered: its hash does not match what it says")
        if kind == "genesis":
            since = since or at
        elif kind == "media" and (broken := _media_problem(db, ref, media_dir)) is not None:
            problems.append(f"{broken} (chain record {seq}, {at})")
        elif kind == "media":
            pass
        elif (found := _current_content(db, kind, ref)) is None:
            problems.append(f"{_name(kind, ref)} was captured (chain record {seq}, {at}) and is no longer in the archive")
        elif found != content_hash:
            problems.append(f"{_name(kind, ref)} was changed after it was captured (chain record {seq}, {at})")
        covered.add((kind, ref))
        prev, expected_seq, newest = record, seq + 1, record
    if since is not None:
        for channel_id, post_id, version in db.execute(
                "SELECT channel_id, post_id, version FROM post_versions WHERE seen_at >= ?", (since,)):
            if ("post", f"{channel_id}/{post_id}/{version}") not in covered:
                problems.append(f"post {channel_id}/{post_id} version {version} is in the archive but not in the "
                                "chain (added outside legation)")
        for url, version in db.execute("SELECT url, version FROM page_versions WHERE fetched_at >= ?", (since,)):
            if ("page", f"{version}#{url}") not in covered:
                problems.append(f"page {url} version {version} is in the archive but not in the chain")
    stamps, newest_stamp = _verify_stamps(db, roots, problems)
    return Verdict(records, tuple(problems), newest, stamps, newest_stamp)


def _verify_stamps(db: sqlite3.Connection, roots: tuple[Any, ...], problems: list[str]) -> tuple[int, str | None]:
    from storage.tokens import check_token

    count, newest = 0, None
    for stamp in get_stamps(db):
        count += 1
        where = f"the time-stamp {stamp.id} of chain record {stamp.seq} by {stamp.tsa}"
        row = db.execute("SELECT hash FROM evidence_chain WHERE seq = ?", (stamp.seq,)).fetchone()
        if row is None:
            problems.append(f"{where} names a record the chain does not have")
            continue
        if row[0] != stamp.hash:
            problems.append(f"{where} was made for another hash than the record has now")
        checked = check_token(stamp.token, row[0], roots)
        if not checked.ok:
            problems.append(f"{where} {checked.problem}")
        elif checked.gen_time != stamp.gen_time:
            problems.append(f"{where} says {checked.gen_time}, the archive says {stamp.gen_time}")
        else:
            newest = f"record {stamp.seq} at {checked.gen_time} by {checked.signer or stamp.tsa}"
    return count, newest


def _media_problem(db: sqlite3.Connection, sha256: str, media_dir: Path | None) -> str | None:
    """What is wrong with a chained media file: its row changed or gone, its bytes changed."""
    row = db.execute("SELECT size, path FROM media_files WHERE sha256 = ?", (sha256,)).fetchone()
    if row is None:
        return f"media file {sha256} was captured and is no longer in the archive"
    if media_dir is not None:
        try:
            data = (media_dir / row[1]).read_bytes()
        except OSError:
            return f"media file {row[1]} is missing from {media_dir}"
        if hashlib.sha256(data).hexdigest() != sha256 or len(data) != row[0]:
            return f"media file {row[1]} was changed after it was captured"
    return None


def _name(kind: str, ref: str) -> str:
    if kind == "post":
        channel_id, post_id, version = ref.split("/")
        return f"post {channel_id}/{post_id} version {version}"
    if kind == "deletion":
        channel_id, post_id, event = ref.split("/")
        return f"the deletion of post {channel_id}/{post_id} (event {event})"
    version, url = ref.split("#", 1)
    return f"page {url} version {version}"


def _current_content(db: sqlite3.Connection, kind: str, ref: str) -> str | None:
    """The content hash of the archived row ``ref`` names, as it is now; None when it is gone."""
    if kind == "post":
        channel_id, post_id, version = (int(part) for part in ref.split("/"))
        row = db.execute("SELECT text, html, media, link_preview, forwarded_from, buttons FROM post_versions "
                         "WHERE channel_id = ? AND post_id = ? AND version = ?", (channel_id, post_id, version)).fetchone()
        return post_content(*row) if row else None
    if kind == "deletion":
        channel_id, post_id, event = (int(part) for part in ref.split("/"))
        row = db.execute("SELECT at, detail FROM post_events WHERE id = ? AND channel_id = ? AND post_id = ? "
                         "AND kind = 'deleted'", (event, channel_id, post_id)).fetchone()
        return deletion_content(channel_id, post_id, row[0], row[1]) if row else None
    number, url = ref.split("#", 1)
    row = db.execute("SELECT raw, title, published_at, text FROM page_versions WHERE url = ? AND version = ?",
                     (url, int(number))).fetchone()
    if row is None:
        return None
    return page_content(url, int(number), hashlib.sha256(zlib.decompress(row[0])).hexdigest(),
                        page_content_hash(row[1], row[2], row[3]))
