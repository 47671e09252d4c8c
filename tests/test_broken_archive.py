"""An archive that cannot be opened: every command ends at once with one clear line, exit 1,
no traceback, no hang (a health check that hangs is worse than one that fails)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


def configured(tmp_path: Path, database: Path) -> Path:
    config = tmp_path / "legation.toml"
    config.write_text(f'database = "{database}"\n[[channels]]\nname = "MFARussia"\n[pages]\nfollow = []\n',
                      encoding="utf-8")
    return config


def half_of_a_real_archive(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, checksum TEXT, "
                     "applied_at TEXT)")
        conn.execute("CREATE TABLE filler (x TEXT)")
        conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 2000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.slow
@pytest.mark.parametrize(("case", "expected"), [
    ("text file", "not a legation archive"),
    ("random bytes", "not a legation archive"),
    ("truncated archive", "database is corrupt"),
    ("other sqlite database", "not a legation archive"),
    ("directory", "it is a directory, not a file"),
])
@pytest.mark.parametrize("command", [("status",), ("search", "хартия"), ("sync",)])
def test_an_unusable_archive_is_one_clear_line(tmp_path, case, expected, command):
    database = tmp_path / "archive.sqlite3"
    if case == "text file":
        database.write_text("just some notes, not a database\n" * 10)
    elif case == "random bytes":
        database.write_bytes(os.urandom(4096))
    elif case == "truncated archive":
        half_of_a_real_archive(database)
    elif case == "other sqlite database":
        with sqlite3.connect(database) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
    else:
        database.mkdir()

    done = run(configured(tmp_path, database), *command)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("legation: ") and expected in line, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", [("status",), ("sync",)])
def test_a_missing_directory_is_one_clear_line(tmp_path, command):
    done = run(configured(tmp_path, tmp_path / "nowhere" / "archive.sqlite3"), *command)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("legation: ") and "nowhere" in message and (
        "does not exist" in message or "No such file or directory" in message or "no archive at" in message)


@pytest.mark.slow
def test_a_lock_path_that_is_a_directory_is_one_clear_line(tmp_path):
    database = tmp_path / "archive.sqlite3"
    Path(f"{database}.lock").mkdir()
    done = run(configured(tmp_path, database), "sync")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("legation: cannot take the writer lock")
