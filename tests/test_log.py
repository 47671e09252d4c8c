"""Logging: JSON lines off a terminal, and no credentials in any line."""

from __future__ import annotations

import io
import json

import structlog

from monitor.cli.capture import ProgressLine
from monitor.log import configure_logging
from storage.models import ChannelState, SaveResult


def test_json_lines_without_credentials():
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    structlog.get_logger().warning("request_retry", url="socks5://alice:s3cret@proxy.example:1080", attempt=2)
    structlog.get_logger().debug("hidden_below_level")

    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "request_retry" and event["level"] == "warning"
    assert event["url"] == "socks5://***:***@proxy.example:1080"
    assert "s3cret" not in line


def test_progress_line_on_a_terminal(capsys):
    progress = ProgressLine()
    progress.enabled = True  # capsys is not a terminal; the drawing is what is under test
    progress("MFARussia", ChannelState(1, "MFARussia", head_id=22960, tail_id=21003), SaveResult(new=1240))
    progress.done()
    assert capsys.readouterr().err == "\rMFARussia: 1240 new, 0 changed; newest id 22960, oldest id 21003\n"


class Terminal(io.StringIO):
    """A stream that says it is a terminal (what is drawn on it is under test)."""

    def isatty(self) -> bool:
        return True


def test_log_lines_are_written_above_the_progress_line_not_glued_to_it(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    configure_logging("info", "json", terminal)
    progress = ProgressLine()
    progress("MFARussia", ChannelState(1, "MFARussia", head_id=100, tail_id=81), SaveResult(new=20))
    structlog.get_logger().info("page_fetched", url="https://mid.ru/ru/1/")
    progress("MFARussia", ChannelState(1, "MFARussia", head_id=100, tail_id=61), SaveResult(new=40))
    progress.done()

    screen = _render(terminal.getvalue())
    assert json.loads(screen[0])["event"] == "page_fetched"
    assert screen[1] == "MFARussia: 40 new, 0 changed; newest id 100, oldest id 61"


def test_no_color_turns_colours_off(monkeypatch):
    terminal = Terminal()
    configure_logging("info", "console", terminal)
    structlog.get_logger().warning("coloured")
    assert "\x1b[" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = Terminal()
    configure_logging("info", "console", terminal)
    structlog.get_logger().warning("plain")
    assert "plain" in terminal.getvalue() and "\x1b[" not in terminal.getvalue()


def _render(written: str) -> list[str]:
    """What a terminal shows: a carriage return goes back to the start of the line."""
    lines, line, column = [], [], 0
    for char in written:
        if char == "\n":
            lines.append("".join(line).rstrip())
            line, column = [], 0
        elif char == "\r":
            column = 0
        else:
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
    if line:
        lines.append("".join(line).rstrip())
    return lines


def test_debug_shows_each_http_request_and_no_library_internals(tme, write_config):
    import subprocess
    import sys
    from pathlib import Path

    tme.channel("ministry").add(1)
    config = write_config("ministry", pages="[pages]\nfollow = []\n")
    done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), "--log-level", "debug",
                           "--log-format", "json", "sync"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    requests = [e for e in events if e["event"] == "http_request"]
    assert requests and requests[0]["method"] == "GET" and requests[0]["url"].endswith("/s/ministry")
    assert requests[0]["status"] == 200 and requests[0]["ms"] >= 0
