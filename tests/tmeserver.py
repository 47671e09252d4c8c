"""A loopback stand-in for t.me: channel pages with ``?before=`` pagination, and faults."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "tme"
PAGE_SIZE = 20

PAGE = Template((FIXTURES / "channel_page.html").read_text(encoding="utf-8"))
POST = Template((FIXTURES / "post.html").read_text(encoding="utf-8"))
NO_PREVIEW = Template((FIXTURES / "no_preview.html").read_text(encoding="utf-8"))
EMBED = Template((FIXTURES / "embed_post.html").read_text(encoding="utf-8"))
NOT_FOUND = (FIXTURES / "embed_not_found.html").read_bytes()
MORE = '<div class="tgme_widget_message_centered js-messages_more_wrap"><a href="/s/{u}?{k}={v}" class="tme_messages_more js-messages_more" data-{k}="{v}"></a></div>'


def data_view(channel_id: int, post_id: int) -> str:
    raw = json.dumps({"c": -channel_id, "p": post_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def synthetic_post(username: str, post_id: int, *, text: str | None = None, views: str = "1.2K",
                   edited: bool = False, channel_id: int = 1_000_000_001, title: str = "Test channel",
                   start: datetime = datetime(2020, 1, 1, tzinfo=UTC)) -> str:
    """One message in t.me's markup, written by us (never copied from a capture)."""
    moment = start + timedelta(hours=post_id)
    return POST.substitute(
        username=username, post_id=post_id, data_view=data_view(channel_id, post_id), title=title,
        text_html=text if text is not None else f"Post number {post_id} about the Eurasian charter",
        views=views, edited="edited &nbsp;" if edited else "",
        date=moment.isoformat(), clock=moment.strftime("%H:%M"),
    )


def message_wraps(html: str) -> dict[int, str]:
    """Split a captured channel page into its message wraps, keyed by post id."""
    soup = BeautifulSoup(html, "lxml")
    wraps = {}
    for wrap in soup.find_all("div", class_="tgme_widget_message_wrap"):
        message = wrap.find("div", attrs={"data-post": True})
        if message is not None:
            wraps[int(message["data-post"].rsplit("/", 1)[1])] = str(wrap)
    return wraps


@dataclass
class FakeChannel:
    username: str
    title: str = "Test channel"
    description: str = "A channel served from loopback"
    posts: dict[int, str] = field(default_factory=dict)  # id -> message wrap html
    hidden: dict[int, str] = field(default_factory=dict)  # off the pages, still on /<name>/<id>
    page_size: int = PAGE_SIZE

    def delete(self, post_id: int) -> None:
        del self.posts[post_id]

    def hide(self, post_id: int) -> None:
        self.hidden[post_id] = self.posts.pop(post_id)

    def embed(self, post_id: int) -> bytes:
        message = self.posts.get(post_id) or self.hidden.get(post_id)
        return EMBED.substitute(message=message).encode() if message else NOT_FOUND

    def add(self, post_id: int, html: str | None = None, **kwargs: object) -> None:
        self.posts[post_id] = html or synthetic_post(self.username, post_id, title=self.title, **kwargs)

    def render(self, before: int | None) -> str:
        ids = sorted(i for i in self.posts if before is None or i < before)[-self.page_size:]
        older = ids and any(i < ids[0] for i in self.posts)
        newer = ids and any(i > ids[-1] for i in self.posts)
        return PAGE.substitute(
            title=self.title, username=self.username, description=self.description,
            counters='<div class="tgme_channel_info_counter"><span class="counter_value">'
                     f'{len(self.posts)}</span> <span class="counter_type">subscribers</span></div>',
            messages="".join(self.posts[i] for i in ids),
            more_before=MORE.format(u=self.username, k="before", v=ids[0]) if older else "",
            more_after=MORE.format(u=self.username, k="after", v=ids[-1]) if newer else "",
        )


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"fault"
    stall: float = 0.0  # sleep this long before answering (a timeout, for the client)


class FakeTelegram:
    """``/s/<name>`` pages, ``/<name>`` info pages, redirects for unknown names, queued faults."""

    def __init__(self) -> None:
        self.channels: dict[str, FakeChannel] = {}
        self.faults: deque[Fault] = deque()
        self.requests: list[str] = []
        self.delay = 0.0
        self.outage: Callable[[str], bool] | None = None  # paths that answer 503 while set
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def channel(self, username: str, **kwargs: object) -> FakeChannel:
        self.channels[username.lower()] = FakeChannel(username, **kwargs)  # type: ignore[arg-type]
        return self.channels[username.lower()]

    def fail_next(self, status: int, count: int = 1, **kwargs: object) -> None:
        for _ in range(count):
            self.faults.append(Fault(status, **kwargs))  # type: ignore[arg-type]

    def page_requests(self) -> list[str]:
        return [r for r in self.requests if r.startswith("/s/")]

    def embed_requests(self) -> list[str]:
        return [r for r in self.requests if r.endswith("?embed=1")]

    def start(self) -> FakeTelegram:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def respond(self, path: str) -> tuple[int, dict[str, str], bytes, float]:
        with self._lock:
            self.requests.append(path)
            if self.faults:
                fault = self.faults.popleft()
                return fault.status, fault.headers, fault.body, fault.stall
            if self.outage is not None and self.outage(path):
                return 503, {}, b"temporarily down", 0.0
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 2 and segments[0] == "s":
            channel = self.channels.get(segments[1].lower())
            if channel is None:
                return 302, {"Location": f"/{segments[1]}"}, b"", 0.0
            before = parse_qs(parts.query).get("before", [None])[0]
            body = channel.render(int(before) if before else None)
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body.encode(), self.delay
        if len(segments) == 2 and segments[1].isdigit():
            channel = self.channels.get(segments[0].lower())
            if channel is not None:
                body = channel.embed(int(segments[1]))
                return 200, {"Content-Type": "text/html; charset=utf-8"}, body, 0.0
        if len(segments) == 1:
            body = NO_PREVIEW.substitute(username=segments[0]).encode()
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body, 0.0
        return 404, {}, b"not found", 0.0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, headers, body, stall = fake.respond(self.path)
                if stall:
                    time.sleep(stall)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def swiftui_channel(server: FakeTelegram, synthetic_below: int = 237) -> FakeChannel:
    """The captured swiftui_dev page on top of a synthetic history of our own below it.

    Ids divisible by 7 are missing from the synthetic part, as deleted posts are.
    """
    html = (SHARED / "channel-page-swiftui_dev-before-262.html").read_text(encoding="utf-8")
    channel = server.channel("swiftui_dev", title="Alexander Kraev")
    for post_id in range(1, synthetic_below):
        if post_id % 7:
            channel.add(post_id, channel_id=1492664793)
    channel.posts.update(message_wraps(html))
    return channel
