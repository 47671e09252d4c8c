"""A researcher's first week (issue 32): each thing a new user hit, through the real command."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import install_command
from monitor.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


def invoke(config: Path, *args: str):
    return CliRunner().invoke(cli, ["-c", str(config), *args], catch_exceptions=False)


@pytest.fixture
def archived(tme, write_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 41):
        channel.add(post_id, text=f"Заявление {post_id} о хартии https://mid.ru/ru/{post_id}/ " + "слово " * 150)
    config = write_config("MFARussia", pages="[pages]\nfollow = []\n")
    assert invoke(config, "backfill").exit_code == 0
    return config


def test_recheck_of_a_channel_that_does_not_exist_does_not_make_it_healthy(tme, write_config):
    config = write_config("NoSuchChannel")
    assert invoke(config, "sync").exit_code == 1

    recheck = invoke(config, "recheck")

    assert recheck.exit_code == 1
    assert recheck.stdout.splitlines()[0] == ("NoSuchChannel: nothing archived yet, nothing to re-check; "
                                              "run 'legation sync NoSuchChannel' first")
    status = invoke(config, "status")
    assert status.exit_code != 0 and "NoSuchChannel" in status.stdout
    assert not re.search(r"NoSuchChannel\s+ok", status.stdout)


@pytest.mark.parametrize("command", [["search", "хартия", "--channel", "MFARusia"],
                                     ["export", "--channel", "@MFARusia", "-o", "{out}"],
                                     ["history", "MFARusia", "5"]])
def test_a_misspelt_channel_is_named_with_the_close_one_and_leaves_no_file(archived, tmp_path, command):
    out = tmp_path / "x.jsonl"
    result = invoke(archived, *[part.format(out=out) for part in command])

    assert result.exit_code == 2
    assert result.stderr.strip() == "legation: no channel 'MFARusia' in the archive; did you mean MFARussia?"
    assert list(tmp_path.glob("x.jsonl*")) == []


def test_a_channel_named_in_another_case_or_as_a_link_is_found(archived):
    result = invoke(archived, "search", "хартия", "--channel", "https://t.me/s/mfarussia", "--limit", "1")
    assert result.exit_code == 0 and "/MFARussia/40" in result.stdout


def test_a_post_id_past_sqlite_is_a_usage_error(archived):
    result = invoke(archived, "history", "MFARussia", "99999999999999999999999")
    assert result.exit_code == 2 and "is not a post id" in result.stderr


def test_export_into_head_ends_quietly(archived):
    command = f"{shlex.quote(sys.executable)} -m monitor -c {shlex.quote(str(archived))} export 2>err.txt | head -1"
    done = subprocess.run(["bash", "-c", command], cwd=archived.parent, capture_output=True, text=True, timeout=60)

    assert json.loads(done.stdout)["post_id"] == 1
    errors = (archived.parent / "err.txt").read_text()
    assert "Traceback" not in errors and "BrokenPipe" not in errors and "error" not in errors, errors


def test_browse_on_a_busy_port_says_so_and_names_the_option(archived):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = invoke(archived, "browse", "--port", str(port))

    assert result.exit_code == 1
    assert result.stderr.strip() == (f"legation: cannot serve on 127.0.0.1:{port}: the port is in use; "
                                     f"choose another port with --port (legation browse --port {port + 1})")
    assert "browse the archive at" not in result.output


def test_add_takes_the_channel_from_a_post_link(write_config):
    config = write_config("BelTA_eng")
    result = invoke(config, "add", "https://t.me/MFARussia/22958", "t.me/s/mid_rf?before=10")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"following MFARussia, mid_rf in {config}"
    assert 'name = "MFARussia"' in config.read_text() and 'name = "mid_rf"' in config.read_text()


def test_refetch_of_a_page_not_in_the_archive_says_so(archived):
    result = invoke(archived, "refetch", "https://mid.ru/nonexistent/")
    assert result.exit_code == 1
    assert result.stdout.strip() == "0 page(s) queued"
    assert "not in the archive: https://mid.ru/nonexistent/" in result.stderr


def test_csv_links_are_json_as_the_readme_says_and_formulas_are_defused(tme, write_config, tmp_path):
    channel = tme.channel("MFARussia")
    channel.add(1, text="=HYPERLINK(&quot;http://evil.example&quot;) https://mid.ru/ru/1/")
    channel.add(2, text="+cmd|' /C calc'!A0")
    channel.add(3, text="@SUM(1+1)")
    channel.add(4, text="-2+3")
    channel.add(5, text="Обычный текст")
    config = write_config("MFARussia", pages="[pages]\nfollow = []\n")
    assert invoke(config, "backfill").exit_code == 0
    out = tmp_path / "out.csv"

    assert invoke(config, "export", "--format", "csv", "--bom", "-o", str(out)).exit_code == 0

    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [row["text"] for row in rows] == ["'=HYPERLINK(\"http://evil.example\") https://mid.ru/ru/1/",
                                             "'+cmd|' /C calc'!A0", "'@SUM(1+1)", "'-2+3", "Обычный текст"]
    assert "https://mid.ru/ru/1/" in [link["url"] for link in json.loads(rows[0]["links"])]
    assert rows[4]["links"] == ""
    jsonl = tmp_path / "out.jsonl"
    invoke(config, "export", "-o", str(jsonl))
    assert json.loads(jsonl.read_text().splitlines()[0])["text"].startswith("=HYPERLINK")  # JSON lines stay exact


def test_install_hints_are_commands_that_work_wherever_legation_was_installed():
    assert install_command("browse") == f"{shlex.quote(sys.executable)} -m pip install 'datasette>=0.64' 'uvicorn>=0.20'"
    assert install_command("browser") == f"{shlex.quote(sys.executable)} -m pip install 'playwright>=1.40'"
    shipped = [*ROOT.joinpath("monitor").rglob("*.py"), ROOT / "config.example.toml", ROOT / "README.md"]
    assert [str(p) for p in shipped if "legation[" in p.read_text(encoding="utf-8")
            and p.name != "__init__.py"] == []


def test_the_service_unit_runs_the_legation_its_own_comment_installs():
    unit = (ROOT / "contrib" / "legation.service").read_text(encoding="utf-8")
    [venv] = re.findall(r"python3 -m venv (\S+)", unit)
    [binary] = re.findall(r"^ExecStart=(\S+)", unit, re.M)
    assert binary == f"{venv}/bin/legation"
    assert f"{venv}/bin/pip install ." in unit


def test_ctrl_c_during_a_backfill_on_a_terminal_starts_its_message_on_a_line_of_its_own(tme, write_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 400):
        channel.add(post_id, text=f"Заявление {post_id}")
    tme.delay = 0.2
    config = write_config("MFARussia", pages="[pages]\nfollow = []\n")
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "backfill"], cwd=ROOT,
                               stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"oldest id" not in seen and time.monotonic() < deadline:
            seen += os.read(controller, 4096)
        assert b"oldest id" in seen, seen
        process.send_signal(signal.SIGINT)
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    text = seen.decode()
    assert "legation: interrupted" in text
    assert re.search(r"(^|[\r\n])legation: interrupted", text), text[-300:]
