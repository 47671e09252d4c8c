"""``legation browse``: the archive in Datasette, read-only, with labels, search and facets."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import json
import signal
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a child gets when its parent dies

TABLES: dict[str, dict[str, Any]] = {
    "post_feed": {"description": "Every post, newest version, with links to t.me and the titles of its pages.",
                  "facets": ["channel", "edited"], "sort_desc": "date"},
    "posts": {"description": "Posts as archived (newest version); see post_versions for every version.",
              "facets": ["channel_id", "edited", "service"], "sort_desc": "date",
              "columns": {"text": "Plain text", "html": "As Telegram rendered it", "media": "JSON list of media",
                          "deleted_at": "When legation confirmed the deletion"}},
    "post_search": {"description": "Full-text search over posts, newest first (key is time).",
                    "fts_table": "posts_fts", "fts_pk": "key", "sort_desc": "key"},
    "pages": {"description": "Release pages linked from posts: status, title, date, clean text.",
              "fts_table": "pages_fts", "facets": ["status", "host", "lang"], "sort_desc": "fetched_at"},
    "post_pages": {"description": "Each post next to each archived page it links to.", "facets": ["username"]},
    "edits": {"description": "Each edit next to the version before it.", "facets": ["channel"],
              "sort_desc": "seen_at"},
    "deletions": {"description": "Posts deleted after they were archived.", "facets": ["channel"],
                  "sort_desc": "deleted_at"},
    "alerts": {"description": "Keyword alerts: what matched, and whether it was sent.",
               "facets": ["rule", "kind"], "sort_desc": "created_at"},
    "links": {"description": "Every link of every post, normalised.", "facets": ["kind", "host"]},
}
HIDDEN = ("page_versions", "page_attachments", "robots", "schema_migrations", "deletion_candidates", "runs")


def datasette_available() -> bool:
    return importlib.util.find_spec("datasette") is not None


def metadata(database: Path) -> dict[str, Any]:
    """Datasette metadata: labels, search and facets for the archive; raw blobs hidden."""
    tables: dict[str, Any] = {name: dict(spec) for name, spec in TABLES.items()}
    tables.update({name: {"hidden": True} for name in HIDDEN})
    return {
        "title": "legation archive",
        "description": "Telegram channels, their edits and deletions, and the release pages they link to.",
        "databases": {database.stem: {"tables": tables}},
    }


def datasette_command(python: str, database: Path, metadata_file: Path, host: str, port: int) -> list[str]:
    """Datasette serving ``database`` without writes (no write plugins, no SQL that writes)."""
    return [python, "-m", "datasette", "serve", str(database), "--metadata", str(metadata_file),
            "--host", host, "--port", str(port), "--setting", "sql_time_limit_ms", "5000",
            "--setting", "default_page_size", "50"]


def write_metadata(database: Path, target: Path) -> Path:
    target.write_text(json.dumps(metadata(database), ensure_ascii=False, indent=2), encoding="utf-8")
    return target


def die_with_parent() -> None:
    """In the Datasette child (``preexec_fn``): SIGTERM when ``legation browse`` dies, however it
    dies (SIGTERM, SIGINT, kill -9), so that no server is left holding the port."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
