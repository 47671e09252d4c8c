"""Archived pages as WARC response records (warcio), for standard replay tools."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from typing import Any, BinaryIO

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# Headers that described the transfer, not the stored (decoded) body.
TRANSFER_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


async def write_warc(versions: AsyncIterator[dict[str, Any]], out: BinaryIO) -> int:
    """Write every page version as a gzipped ``response`` record; returns how many."""
    writer = WARCWriter(out, gzip=True)
    count = 0
    async for version in versions:
        writer.write_record(response_record(writer, version))
        count += 1
    return count


def response_record(writer: WARCWriter, version: Mapping[str, Any]) -> Any:
    """A page version (url, final_url, fetched_at, http_status, headers, raw) as a WARC response record."""
    status = int(version["http_status"] or 200)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    headers = [(k, v) for k, v in version["headers"].items() if k.lower() not in TRANSFER_HEADERS]
    headers.append(("Content-Length", str(len(version["raw"]))))
    http_headers = StatusAndHeaders(f"{status} {reason}", headers, protocol="HTTP/1.1")
    return writer.create_warc_record(
        version["final_url"] or version["url"],
        "response",
        payload=io.BytesIO(version["raw"]),
        length=len(version["raw"]),
        http_headers=http_headers,
        warc_headers_dict={"WARC-Date": version["fetched_at"]},
    )
