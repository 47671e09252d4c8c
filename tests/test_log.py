"""Logging: JSON lines off a terminal, and no credentials in any line."""

from __future__ import annotations

import io
import json

import structlog

from monitor.cli import ProgressLine
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
