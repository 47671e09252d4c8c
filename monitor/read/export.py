"""``legation export``: posts as JSON lines or CSV, streamed to a file or stdout."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import AsyncGenerator
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("channel", "post_id", "url", "date", "text", "views", "author", "edited", "deleted_at",
               "forwarded_from", "reply_to", "grouped_id", "versions", "links", "media", "link_preview_url")


async def write_jsonl(posts: AsyncGenerator[dict[str, Any], None], out: TextIO) -> int:
    """One JSON object per line, UTF-8, keys in a stable order; returns the count."""
    count = 0
    async with contextlib.aclosing(posts):  # closed here even when the reader went away (| head)
        async for post in posts:
            out.write(json.dumps(post, ensure_ascii=False) + "\n")
            count += 1
    return count


async def write_csv(posts: AsyncGenerator[dict[str, Any], None], out: TextIO, *, bom: bool = False) -> int:
    """One row per post; lists and objects as JSON in their cell, formulas defused; returns the count."""
    if bom:
        out.write("\ufeff")  # spreadsheet programs then read the file as UTF-8
    writer = csv.writer(out, lineterminator="\r\n")
    count = 0
    async with contextlib.aclosing(posts):
        async for post in posts:
            if count == 0:
                extra = [c for c in ("pages", "version_history", "media_files") if c in post]
                writer.writerow([*CSV_COLUMNS, *extra])
            writer.writerow([_safe(_cell(post, column)) for column in CSV_COLUMNS]
                            + [_safe(json.dumps(post[c], ensure_ascii=False))
                               for c in ("pages", "version_history", "media_files") if c in post])
            count += 1
    if count == 0:
        writer.writerow(CSV_COLUMNS)
    return count


def _cell(post: dict[str, Any], column: str) -> Any:
    if column in ("links", "media"):
        return json.dumps(post[column], ensure_ascii=False) if post[column] else ""
    if column == "link_preview_url":
        return (post.get("link_preview") or {}).get("url", "")
    value = post.get(column)
    if isinstance(value, bool):
        return int(value)
    return "" if value is None else value


def _safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab or
    carriage return first: OWASP's CSV injection list) starts with an apostrophe instead, which
    spreadsheets show as text; numbers stay numbers. JSON lines keep every text exactly."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
