"""Reading a test's archive: the rows a query returns, also while another process writes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def rows(path: Path, sql: str, *params: object) -> list[tuple]:
    """All rows of ``sql`` against the archive at ``path``."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def read_only(path: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` read without writing; [] while the archive or its schema does not exist yet."""
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
