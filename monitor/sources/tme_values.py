"""Values read off t.me pages: counts, durations, ids within SQLite's range, and the page's encoding."""

from __future__ import annotations

import codecs
import re
from decimal import Decimal, InvalidOperation
from typing import Any

SUFFIXES = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
NUMBER = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*([KMB]?)\s*$", re.I)
MAX_INTEGER = 2**63 - 1  # SQLite's INTEGER: a larger number is no count or id of a real post
# <meta charset="..."> or <meta http-equiv="Content-Type" content="text/html; charset=...">
DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
DECLARATION_WINDOW = 4096
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class PageDecodeError(ValueError):
    """The bytes are not text in the encoding they declare (or UTF-8, declaring none)."""


def decode_page(data: bytes) -> str:
    """t.me pages as what they are: a byte-order mark, else the document's own ``<meta charset>``,
    else UTF-8. The HTTP header is not consulted (a wrong one would turn every post into mojibake),
    and bytes that do not decode are an error, never replaced: a garbled page must not make versions.
    """
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    if encoding is None:
        declared = DECLARED_CHARSET.search(data[:DECLARATION_WINDOW])
        encoding = declared[1].decode("ascii").lower() if declared else "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise PageDecodeError(f"the page declares an unknown charset {encoding!r}") from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise PageDecodeError(f"the page is not valid {encoding} (byte {exc.start})") from None


def parse_count(value: str | None) -> int | None:
    """``"1.2K"`` -> 1200, ``"3.1M"`` -> 3100000, ``"991"`` -> 991; None if not a count (or absurdly large)."""
    match = NUMBER.match(value or "")
    if not match:
        return None
    try:
        count = int(Decimal(match[1].replace(",", ".")) * SUFFIXES[match[2].upper()])
    except InvalidOperation:
        return None
    return count if count <= MAX_INTEGER else None


def parse_duration(value: str) -> int | None:
    """``"0:19"`` -> 19, ``"1:02:03"`` -> 3723 seconds."""
    try:
        seconds = 0
        for part in value.strip().split(":"):
            seconds = seconds * 60 + int(part)
    except ValueError:
        return None
    return seconds if seconds <= MAX_INTEGER else None


def parse_id(value: Any) -> int | None:
    """A post or message id: a positive whole number that SQLite can store; None otherwise."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_INTEGER else None
