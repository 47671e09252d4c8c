"""Nothing leaked: secrets in tracebacks, notification tokens at debug level, credentials in
error messages, and terminal control sequences from post text."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.config.settings import load_config
from monitor.daemon.service import archive_channels
from monitor.log import configure_logging, register_secrets

ROOT = Path(__file__).resolve().parents[1]
API_HASH = "0123456789abcdef0123456789abcdef"
PROXY_PASSWORD = "pr0xyPa55"


class AnyEndpoint:
    """A loopback endpoint that answers 200 to anything posted (ntfy, json)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.requests.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


def test_a_logged_exception_never_carries_a_secret():
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    register_secrets([API_HASH, PROXY_PASSWORD])
    try:
        raise RuntimeError(f"proxy http://alice:{PROXY_PASSWORD}@proxy:3128 refused; api_hash={API_HASH}")
    except RuntimeError:
        structlog.get_logger().exception("job_failed")
        logging.getLogger("telethon.network").exception("connection failed")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert all("RuntimeError" in json.loads(line)["exception"] for line in lines)
    assert PROXY_PASSWORD not in stream.getvalue() and API_HASH not in stream.getvalue()


@pytest.mark.slow
def test_notification_tokens_never_reach_debug_logs(tme, write_config, tmp_path):
    endpoint = AnyEndpoint()
    urls = [f"ntfy://127.0.0.1:{endpoint.port}/alerts?token=tk_ntfysecret42",
            f"json://127.0.0.1:{endpoint.port}/hook?+Authorization=Bearer%20jsonbearer77",
            f"json://127.0.0.1:{endpoint.port}/hook2?+X-Api-Key=apikey5150"]
    tme.channel("MFARussia").add(1, text="Лавров о хартии")
    extra = (f'\n[alerts]\nnotify = {json.dumps(urls)}\nmax_age = "36500d"\n'
             '[[alerts.rules]]\nname = "charter"\nkeywords = ["хартия"]\nlanguage = "ru"\n')
    path = write_config("MFARussia", extra=extra)

    done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(path), "--log-level", "debug",
                           "--log-format", "json", "sync"], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert len(endpoint.requests) == 3  # each service was really reached, with its token ...
    assert any("Bearer jsonbearer77" in h.get("Authorization", "") for _, h in endpoint.requests)
    output = done.stdout + done.stderr
    assert "apprise" in output.lower()  # ... while Apprise logged at debug level ...
    for token in ("tk_ntfysecret42", "jsonbearer77", "apikey5150"):
        assert token not in output  # ... and no token reached the output


def test_short_path_tokens_are_masked_by_structure(tmp_path):
    path = tmp_path / "legation.toml"
    path.write_text('[alerts]\nnotify = ["discord://1234/abcd1", "tgram://12345:AAbb/99"]\n'
                    '[[channels]]\nname = "MFARussia"\n', encoding="utf-8")
    config = load_config(path)
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    register_secrets(config.secrets())
    structlog.get_logger().debug("posting", url="https://discord.com/api/webhooks/1234/abcd1", bot="bot AAbb ready")
    assert "abcd1" not in stream.getvalue() and "1234" not in stream.getvalue() and "AAbb" not in stream.getvalue()


def test_credentials_in_headers_and_queries_are_masked_even_unregistered():
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    structlog.get_logger().debug("request", headers="Authorization: Bearer unregistered123",
                                 url="https://api.example/send?api_key=zzz9999&x=1", other="X-Api-Key: k3y4567")
    for secret in ("unregistered123", "zzz9999", "k3y4567"):
        assert secret not in stream.getvalue()
    assert "x=1" in stream.getvalue()


def test_a_bad_web_url_does_not_echo_its_password(tmp_path):
    path = tmp_path / "legation.toml"
    path.write_text('[telegram]\nweb_url = "ftp://user:hunter22@mirror.example"\n[[channels]]\nname = "MFARussia"\n',
                    encoding="utf-8")
    result = CliRunner().invoke(cli, ["-c", str(path), "status"])
    assert result.exit_code == 2
    assert "telegram.web_url" in result.stderr and "hunter22" not in result.stderr


async def test_history_does_not_steer_the_terminal(tme, make_config):
    tme.channel("MFARussia").add(1, text="Заявление\x1b]0;pwned\x07 и \x1b[2J конец\x9b")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "history", "MFARussia", "1"])
    search = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "search", "конец"])

    assert result.exit_code == 0
    assert "Заявление]0;pwned и [2J конец" in result.stdout
    for output in (result.stdout, search.stdout):
        assert not any(c in output for c in "\x1b\x07\x9b")
