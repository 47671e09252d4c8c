"""A citation package: one post with everything that proves it, as a WACZ file.

``legation cite CHANNEL POST`` writes a WACZ (WACZ 1.1.1: a ZIP with ``datapackage.json``, a WARC,
its CDXJ index and a pages list; ReplayWeb.page and the Webrecorder tools open it) holding:

- every version of the post as captured (a WARC ``resource`` record each, at t.me's address and
  the time it was seen), its confirmed deletion, the release pages it links (every version, as
  ``response`` records with the bytes received) and its stored media files;
- ``evidence/citation.json``: each of those items with the exact fields the evidence chain hashed,
  and the chain record that holds it; ``evidence/chain.jsonl``: the chain records from each item
  to the first time-stamp after it; ``evidence/stamp-N.tsr`` and ``stamp-N.dat``: each RFC 3161
  token and the 32 bytes it signs (so that ``openssl ts -verify`` checks it without legation);
- ``evidence/summary.txt``: what was seen, when, and which authority vouches for the time.

:func:`verify_citation` checks such a file alone, offline: the package's hashes, each item hashing
to its chain record, the records linking up to a time-stamped one, and every token.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from monitor import __version__
from monitor.read.warc import response_record
from storage.evidence import (
    _record_hash,
    deletion_content,
    media_content,
    page_content,
    post_content,
)
from storage.models import page_content_hash, utc_now
from storage.tokens import check_token, stamped_message

WACZ_VERSION = "1.1.1"
WARC_NAME = "archive/data.warc.gz"
INDEX_NAME = "indexes/index.cdx"
PAGES_NAME = "pages/pages.jsonl"
CITATION_NAME = "evidence/citation.json"
CHAIN_NAME = "evidence/chain.jsonl"
SUMMARY_NAME = "evidence/summary.txt"
TELEGRAM = "https://t.me"
POST_FIELDS = ("text", "html", "media", "link_preview", "forwarded_from", "buttons")


@dataclass
class Item:
    """One cited thing: what it is, the fields its chain record hashed, and that record's number."""

    kind: str  # post | deletion | page | media
    ref: str  # as in evidence_chain.ref
    url: str
    at: str  # when it was captured
    fields: dict[str, Any]
    seq: int | None = None  # its chain record; None when archived before the chain began
    payload: bytes | None = None  # the bytes its WARC record holds (pages and media)
    headers: dict[str, str] = field(default_factory=dict)
    http_status: int | None = None
    mime: str | None = None
    warc_id: str | None = None


def content_of(item_kind: str, fields: Mapping[str, Any]) -> str:
    """The content hash an item's chain record holds, from its cited fields alone."""
    if item_kind == "post":
        return post_content(*(fields[name] for name in POST_FIELDS))
    if item_kind == "deletion":
        return deletion_content(fields["channel_id"], fields["post_id"], fields["at"], fields["detail"])
    if item_kind == "page":
        return page_content(fields["url"], fields["version"], fields["raw_sha256"],
                            page_content_hash(fields["title"], fields["published_at"], fields["text"]))
    return media_content(fields["sha256"], fields["size"], fields["path"])


@dataclass
class Citation:
    username: str
    post_id: int
    items: list[Item]
    chain: list[dict[str, Any]]
    stamps: list[dict[str, Any]]  # each with its token

    @property
    def url(self) -> str:
        return f"{TELEGRAM}/{self.username}/{self.post_id}"


def gather_citation(db: sqlite3.Connection, username: str, post_id: int, media_dir: Path | None) -> Citation | None:
    """Everything ``cite`` packs for one post, read in one transaction; None when it is not archived."""
    found = db.execute("SELECT id, username FROM channels WHERE username = ? COLLATE NOCASE", (username,)).fetchone()
    if found is None:
        return None
    channel_id, username = found
    url = f"{TELEGRAM}/{username}/{post_id}"
    items: list[Item] = []
    for row in db.execute(f"SELECT version, seen_at, edited, {', '.join(POST_FIELDS)} FROM post_versions "
                          "WHERE channel_id = ? AND post_id = ? ORDER BY version", (channel_id, post_id)):
        version, seen_at, edited, *values = row
        fields = {"channel": username, "post_id": post_id, "version": version, "edited": edited,
                  **dict(zip(POST_FIELDS, values, strict=True))}
        items.append(Item("post", f"{channel_id}/{post_id}/{version}", url, seen_at, fields))
    if not items:
        return None
    for event, at, detail in db.execute("SELECT id, at, detail FROM post_events WHERE channel_id = ? AND post_id = ? "
                                        "AND kind = 'deleted' ORDER BY id", (channel_id, post_id)):
        items.append(Item("deletion", f"{channel_id}/{post_id}/{event}", url, at,
                           {"channel_id": channel_id, "post_id": post_id, "at": at, "detail": detail}))
    for (page_url,) in db.execute("SELECT DISTINCT url FROM links WHERE channel_id = ? AND post_id = ? ORDER BY url",
                                  (channel_id, post_id)).fetchall():
        for version, fetched_at, final_url, status, headers, raw, title, published_at, text in db.execute(
                "SELECT version, fetched_at, final_url, http_status, headers, raw, title, published_at, text "
                "FROM page_versions WHERE url = ? ORDER BY version", (page_url,)).fetchall():
            body = zlib.decompress(raw)
            fields = {"url": page_url, "version": version, "raw_sha256": hashlib.sha256(body).hexdigest(),
                      "title": title, "published_at": published_at, "text": text}
            items.append(Item("page", f"{version}#{page_url}", final_url or page_url, fetched_at, fields, payload=body,
                              headers=json.loads(headers or "{}"), http_status=status))
    for sha256, size, path, mime, media_url, first_seen in db.execute(
            "SELECT DISTINCT f.sha256, f.size, f.path, f.mime, m.url, f.first_seen_at FROM post_media m "
            "JOIN media_files f ON f.sha256 = m.sha256 WHERE m.channel_id = ? AND m.post_id = ? ORDER BY f.sha256",
            (channel_id, post_id)).fetchall():
        try:
            data = (media_dir / path).read_bytes() if media_dir is not None else None
        except OSError:
            data = None  # cited by its hash; verify says the bytes are not in the package
        items.append(Item("media", sha256, media_url, first_seen, {"sha256": sha256, "size": size, "path": path},
                          payload=data, mime=mime))
    for item in items:
        row = db.execute("SELECT seq FROM evidence_chain WHERE ref = ? AND kind = ? ORDER BY seq LIMIT 1",
                         (item.ref, item.kind)).fetchone()
        item.seq = row[0] if row else None
    chain, stamps = _proof(db, [item.seq for item in items if item.seq is not None])
    return Citation(username, post_id, items, chain, stamps)


def _proof(db: sqlite3.Connection, seqs: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chain records from each cited record to the first time-stamp of each authority at or
    after it, and those time-stamps."""
    ranges: list[tuple[int, int]] = []
    stamps: dict[int, dict[str, Any]] = {}
    for seq in sorted(set(seqs)):
        end = seq
        for stamp_id, tsa, stamp_seq, record_hash, gen_time, signer, token in db.execute(
                "SELECT s.id, s.tsa, s.seq, s.hash, s.gen_time, s.signer, s.token FROM evidence_stamps s "
                "WHERE s.seq = (SELECT min(t.seq) FROM evidence_stamps t WHERE t.tsa = s.tsa AND t.seq >= ?)",
                (seq,)).fetchall():
            stamps[stamp_id] = {"id": stamp_id, "tsa": tsa, "seq": stamp_seq, "hash": record_hash,
                                "gen_time": gen_time, "signer": signer, "token": bytes(token)}
            end = max(end, stamp_seq)
        ranges.append((seq, end))
    chain: dict[int, dict[str, Any]] = {}
    for start, end in _merged(ranges):
        for row in db.execute("SELECT seq, kind, ref, content_hash, captured_at, prev_hash, hash FROM evidence_chain "
                              "WHERE seq BETWEEN ? AND ? ORDER BY seq", (start, end)):
            chain[row[0]] = dict(zip(("seq", "kind", "ref", "content_hash", "captured_at", "prev_hash", "hash"),
                                     row, strict=True))
    return [chain[seq] for seq in sorted(chain)], sorted(stamps.values(), key=lambda s: (s["seq"], s["id"]))


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# --- writing -------------------------------------------------------------------------------------


def write_wacz(citation: Citation, out: IO[bytes]) -> None:
    """The citation as a WACZ (every member stored uncompressed, as WACZ asks of its WARC)."""
    warc = _warc(citation)
    files: dict[str, bytes] = {WARC_NAME: warc, INDEX_NAME: _index(warc), PAGES_NAME: _pages(citation)}
    for stamp in citation.stamps:
        files[f"evidence/stamp-{stamp['id']}.tsr"] = stamp["token"]
        files[f"evidence/stamp-{stamp['id']}.dat"] = stamped_message(stamp["hash"])
    files[CHAIN_NAME] = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                for r in citation.chain).encode()
    files[CITATION_NAME] = _json({
        "cites": citation.url,
        "written_at": utc_now(),
        "software": f"legation {__version__}",
        "items": [{"kind": i.kind, "ref": i.ref, "url": i.url, "at": i.at, "record": i.seq, "warc_record_id": i.warc_id,
                   "fields": i.fields} for i in citation.items],
        "stamps": [{k: v for k, v in s.items() if k != "token"} | {"token": f"evidence/stamp-{s['id']}.tsr"}
                   for s in citation.stamps],
    })
    files[SUMMARY_NAME] = summary(citation).encode()
    created = utc_now()
    package = _json({
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "title": f"{citation.url} as archived by legation",
        "description": "Every version of a Telegram post, its deletion, linked release pages and media, with the "
                       "evidence chain records and RFC 3161 time-stamps that prove them. See evidence/summary.txt.",
        "mainPageUrl": citation.url,
        "mainPageDate": citation.items[0].at,
        "created": created,
        "software": f"legation {__version__}",
        "resources": [{"name": Path(name).name, "path": name, "hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
                       "bytes": len(data)} for name, data in files.items()],
    })
    digest = _json({"path": "datapackage.json", "hash": f"sha256:{hashlib.sha256(package).hexdigest()}"})
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in {**files, "datapackage.json": package, "datapackage-digest.json": digest}.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_zip_time(created)), data)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode()


def _zip_time(timestamp: str) -> tuple[int, int, int, int, int, int]:
    day, time_of_day = timestamp.rstrip("Z").split("T")
    year, month, date = (int(p) for p in day.split("-"))
    hour, minute, second = (int(float(p)) for p in time_of_day.split(":"))
    return (year, month, date, hour, minute, second)


def _warc(citation: Citation) -> bytes:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for item in citation.items:
        if item.kind == "post":
            record = _resource(writer, item.url, "resource", _post_document(citation, item), "text/html; charset=utf-8",
                               {"WARC-Date": item.at})
        elif item.kind == "page":
            record = response_record(writer, {"url": item.fields["url"], "final_url": item.url,
                                              "fetched_at": item.at, "http_status": item.http_status,
                                              "headers": item.headers, "raw": item.payload})
        elif item.kind == "media" and item.payload is not None:
            record = _resource(writer, item.url, "resource", item.payload, item.mime or "application/octet-stream",
                               {"WARC-Date": item.at})
        else:
            continue
        writer.write_record(record)
        item.warc_id = record.rec_headers.get_header("WARC-Record-ID")
        writer.write_record(_resource(
            writer, f"urn:legation:{item.kind}:{item.ref}", "metadata",
            _json({"kind": item.kind, "ref": item.ref, "record": item.seq, "fields": item.fields}), "application/json",
            {"WARC-Date": item.at, "WARC-Refers-To": item.warc_id or ""}))
    return buffer.getvalue()


def _resource(writer: WARCWriter, url: str, record_type: str, data: bytes, content_type: str,
              headers: dict[str, str]) -> Any:
    """A record of known length (warcio spools one of unknown length to a temporary file)."""
    return writer.create_warc_record(url, record_type, payload=io.BytesIO(data), length=len(data),
                                     warc_content_type=content_type, warc_headers_dict=headers)


def _post_document(citation: Citation, item: Item) -> bytes:
    """A post version as a page of its own: the HTML fragment t.me showed, as archived."""
    from markupsafe import escape

    fields = item.fields
    heading = f"{citation.username}/{citation.post_id}, version {fields['version']}, captured {item.at}"
    body = fields["html"] if fields["html"] is not None else f"<p>{escape(fields['text'] or '')}</p>"
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(heading)}</title></head><body>'
            f"<p><small>{escape(heading)} by legation</small></p><div class=\"tgme_widget_message_text\">{body}</div>"
            "</body></html>").encode()


def _index(warc: bytes) -> bytes:
    """A CDXJ index of the WARC's response and resource records, sorted by key."""
    lines = []
    iterator = ArchiveIterator(io.BytesIO(warc))
    for record in iterator:
        if record.rec_type not in ("response", "resource"):
            continue
        url = record.rec_headers.get_header("WARC-Target-URI")
        payload = record.content_stream().read()
        offset, length = iterator.get_record_offset(), iterator.get_record_length()
        stamp = "".join(ch for ch in record.rec_headers.get_header("WARC-Date") if ch.isdigit())[:14]
        entry = {"url": url, "mime": _mime(record), "digest": f"sha256:{hashlib.sha256(payload).hexdigest()}",
                 "length": str(length), "offset": str(offset), "filename": Path(WARC_NAME).name}
        if record.rec_type == "response" and record.http_headers is not None:
            entry["status"] = record.http_headers.get_statuscode()
        lines.append(f"{surt(url)} {stamp} {json.dumps(entry, ensure_ascii=False)}")
    return ("\n".join(sorted(lines)) + "\n").encode()


def _mime(record: Any) -> str:
    if record.rec_type == "response" and record.http_headers is not None:
        value = record.http_headers.get_header("Content-Type") or ""
    else:
        value = record.rec_headers.get_header("Content-Type") or ""
    return value.split(";")[0].strip() or "application/octet-stream"


def surt(url: str) -> str:
    """The sort key replay tools look captures up by: host reversed, no scheme, no www."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = host[4:] if host.startswith("www.") else host
    key = ",".join(reversed(host.split("."))) + ")" + (parts.path or "/").lower()
    if parts.query:
        key += "?" + urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True))).lower()
    return key


def _pages(citation: Citation) -> bytes:
    lines = [{"format": "json-pages-1.0", "id": "pages", "title": f"{citation.url} as archived by legation"}]
    posts = [i for i in citation.items if i.kind == "post"]
    lines.append({"url": citation.url, "ts": posts[-1].at, "title": f"{citation.username}/{citation.post_id}"})
    seen = set()
    for item in citation.items:
        if item.kind == "page" and item.url not in seen:
            seen.add(item.url)
            lines.append({"url": item.url, "ts": item.at, "title": item.fields["title"] or item.url})
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


# --- the summary ---------------------------------------------------------------------------------


def summary(citation: Citation) -> str:
    """What was seen, when, and who vouches for the time: for a reader without legation."""
    covered = _covering(citation.items, citation.stamps)
    out = [f"legation citation: {citation.url}", f"written {utc_now()} by legation {__version__}", "",
           "What was seen"]
    for item in citation.items:
        out.append(f"  - {_describe(item)}")
        stamp = covered.get(item.seq) if item.seq is not None else None
        if item.seq is None:
            out.append("      not in the evidence chain (archived before the chain began)")
        elif stamp is None:
            out.append(f"      chain record {item.seq}; not yet time-stamped by an authority")
        else:
            out.append(f"      chain record {item.seq}; existed by {stamp['gen_time']} "
                       f"(time-stamp {stamp['id']} by {stamp['signer'] or stamp['tsa']}, {stamp['tsa']})")
    out += ["", "How to check",
            "  legation verify THIS.wacz [--tsa-ca AUTHORITY-ROOT.pem]   (offline; exit 0 when everything holds)",
            "  Or by hand: each item's fields (evidence/citation.json) hash, as canonical JSON (sorted keys, no",
            "  spaces, UTF-8), to its chain record's content_hash (evidence/chain.jsonl); each record's hash is",
            "  SHA-256 of [seq, kind, ref, content_hash, captured_at, prev_hash] in the same form; each record's",
            "  prev_hash is the hash of the one before. A time-stamp signs SHA-256 of the 32 bytes of a record's",
            "  hash:"]
    for stamp in citation.stamps:
        out.append(f"    openssl ts -verify -data evidence/stamp-{stamp['id']}.dat "
                   f"-in evidence/stamp-{stamp['id']}.tsr -CAfile AUTHORITY-ROOT.pem")
    if not citation.stamps:
        out.append("    (no time-stamp covers these items yet: [evidence] tsa was off, or the next stamp is due)")
    return "\n".join(out) + "\n"


def _describe(item: Item) -> str:
    f = item.fields
    if item.kind == "post":
        text = " ".join((f["text"] or "").split())
        text = text if len(text) <= 160 else text[:159] + "…"
        return f"version {f['version']}{' (edited)' if f['edited'] else ''}, seen {item.at}: {text!r}"
    if item.kind == "deletion":
        return f"deleted: confirmed {f['at']}" + (f" ({f['detail']})" if f["detail"] else "")
    if item.kind == "page":
        return (f"release page {f['url']} version {f['version']}, fetched {item.at}: {f['title']!r}, "
                f"{len(item.payload or b'')} bytes, SHA-256 {f['raw_sha256']}")
    return f"media file {f['path']}, {f['size']} bytes, SHA-256 {f['sha256']}"


def _covering(items: Iterable[Item], stamps: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each cited record's earliest time-stamp at or after it."""
    found = {}
    for item in items:
        if item.seq is None:
            continue
        later = [s for s in stamps if s["seq"] >= item.seq]
        if later:
            found[item.seq] = min(later, key=lambda s: (s["gen_time"], s["id"]))
    return found


# --- checking a package offline ------------------------------------------------------------------


@dataclass
class CitationVerdict:
    """What checking a citation found: what holds (``proven``), and each problem in words."""

    cites: str | None = None
    proven: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_citation(path: Path, roots: tuple[Any, ...]) -> CitationVerdict:
    """Check a WACZ written by ``cite`` alone, with no archive: see the module's docstring."""
    verdict = CitationVerdict()
    try:
        with zipfile.ZipFile(path) as archive:
            files = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        verdict.problems.append(f"{path} is not a readable WACZ (ZIP) file: {exc}")
        return verdict
    if not _package_holds(files, verdict):
        return verdict
    try:
        citation = json.loads(files[CITATION_NAME])
        chain = {r["seq"]: r for r in map(json.loads, files.get(CHAIN_NAME, b"").decode().splitlines())}
        payloads = _payloads(files[WARC_NAME])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        verdict.problems.append(f"the package is not a legation citation ({type(exc).__name__}: {exc})")
        return verdict
    try:
        verdict.cites = citation.get("cites")
        _check_chain(chain, verdict)
        stamps = _check_stamps(citation.get("stamps", []), chain, files, roots, verdict)
        for item in citation.get("items", []):
            _check_item(item, chain, payloads, stamps, verdict)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:  # a hand-made or mangled evidence/ part
        verdict.problems.append(f"the package's evidence is malformed ({type(exc).__name__}: {exc})")
    return verdict


def _package_holds(files: Mapping[str, bytes], verdict: CitationVerdict) -> bool:
    """datapackage.json lists every file with its hash and size, and its digest file matches it."""
    try:
        package = json.loads(files["datapackage.json"])
        resources = {r["path"]: r for r in package["resources"]}
    except (KeyError, ValueError, TypeError) as exc:
        verdict.problems.append(f"the package has no readable datapackage.json ({type(exc).__name__}: {exc})")
        return False
    if "datapackage-digest.json" in files:
        try:
            listed = json.loads(files["datapackage-digest.json"])["hash"]
        except (KeyError, ValueError, TypeError):
            listed = None
        if listed != f"sha256:{hashlib.sha256(files['datapackage.json']).hexdigest()}":
            verdict.problems.append("datapackage.json does not match datapackage-digest.json")
    for name, data in files.items():
        if name in ("datapackage.json", "datapackage-digest.json"):
            continue
        resource = resources.get(name)
        if resource is None:
            verdict.problems.append(f"{name} is in the package but not listed in datapackage.json")
        elif resource.get("hash") != f"sha256:{hashlib.sha256(data).hexdigest()}" or resource.get("bytes") != len(data):
            verdict.problems.append(f"{name} was changed after the package was written (its hash or size differs)")
    for name in resources:
        if name not in files:
            verdict.problems.append(f"{name} is listed in datapackage.json but missing")
    for name in (WARC_NAME, CITATION_NAME, CHAIN_NAME):
        if name not in files:
            verdict.problems.append(f"the package has no {name}")
            return False
    return True


def _payloads(warc: bytes) -> dict[str, bytes]:
    """The payload of each response and resource record, by WARC-Record-ID."""
    found = {}
    for record in ArchiveIterator(io.BytesIO(warc)):
        if record.rec_type in ("response", "resource"):
            found[record.rec_headers.get_header("WARC-Record-ID")] = record.content_stream().read()
    return found


def _check_chain(chain: Mapping[int, dict[str, Any]], verdict: CitationVerdict) -> None:
    for seq, record in chain.items():
        if _record_hash(seq, record["kind"], record["ref"], record["content_hash"], record["captured_at"],
                        record["prev_hash"]) != record["hash"]:
            verdict.problems.append(f"chain record {seq} was altered: its hash does not match what it says")
        before = chain.get(seq - 1)
        if before is not None and record["prev_hash"] != before["hash"]:
            verdict.problems.append(f"chain record {seq} does not follow record {seq - 1}")


def _check_stamps(stamps: list[dict[str, Any]], chain: Mapping[int, dict[str, Any]], files: Mapping[str, bytes],
                  roots: tuple[Any, ...], verdict: CitationVerdict) -> list[dict[str, Any]]:
    """The time-stamps that hold, each checked against its record's hash."""
    good = []
    for stamp in stamps:
        where = f"time-stamp {stamp['id']} (chain record {stamp['seq']}, {stamp['tsa']})"
        record, token = chain.get(stamp["seq"]), files.get(stamp.get("token", ""))
        if record is None or token is None:
            verdict.problems.append(f"{where}: its {'record' if record is None else 'token'} is not in the package")
            continue
        checked = check_token(token, record["hash"], roots)
        if not checked.ok:
            verdict.problems.append(f"{where} {checked.problem}")
        elif checked.gen_time != stamp["gen_time"]:
            verdict.problems.append(f"{where} is said to be of {stamp['gen_time']}; the token says {checked.gen_time}")
        else:
            good.append({**stamp, "signer": checked.signer})
    return good


def _check_item(item: Mapping[str, Any], chain: Mapping[int, dict[str, Any]], payloads: Mapping[str, bytes],
                stamps: list[dict[str, Any]], verdict: CitationVerdict) -> None:
    name = _item_name(item)
    fields, seq = item["fields"], item.get("record")
    if item["kind"] in ("page", "media"):
        payload = payloads.get(item.get("warc_record_id") or "")
        wanted = fields["raw_sha256"] if item["kind"] == "page" else fields["sha256"]
        if payload is None:
            verdict.notes.append(f"{name}: its bytes are not in the package (cited by hash only)")
        elif hashlib.sha256(payload).hexdigest() != wanted:
            verdict.problems.append(f"{name}: the bytes in the WARC are not those captured")
    elif item["kind"] == "post" and item.get("warc_record_id") not in payloads:
        verdict.problems.append(f"{name}: its WARC record is missing")
    if seq is None:
        verdict.notes.append(f"{name}: archived before the evidence chain began; nothing proves it")
        return
    record = chain.get(seq)
    if record is None or (record["kind"], record["ref"]) != (item["kind"], item["ref"]):
        verdict.problems.append(f"{name}: its chain record {seq} is not in the package")
        return
    try:
        content = content_of(item["kind"], fields)
    except (KeyError, TypeError) as exc:
        verdict.problems.append(f"{name}: its fields are incomplete ({exc})")
        return
    if content != record["content_hash"]:
        verdict.problems.append(f"{name} differs from what was captured (it no longer hashes to chain record {seq})")
        return
    linked = [s for s in stamps if s["seq"] >= seq and all(n in chain for n in range(seq, s["seq"] + 1))]
    if not linked:
        verdict.proven.append(f"{name}: in the chain (record {seq}), captured {record['captured_at']} by legation's "
                              "clock; not yet time-stamped")
        return
    first = min(linked, key=lambda s: s["gen_time"])
    verdict.proven.append(f"{name}: existed by {first['gen_time']}, signed by {first['signer'] or first['tsa']}")


def _item_name(item: Mapping[str, Any]) -> str:
    fields = item["fields"]
    if item["kind"] == "post":
        return f"post {fields['channel']}/{fields['post_id']} version {fields['version']}"
    if item["kind"] == "deletion":
        return f"the deletion of post {fields['post_id']} confirmed {fields['at']}"
    if item["kind"] == "page":
        return f"page {fields['url']} version {fields['version']}"
    return f"media file {fields['sha256'][:16]}…"
