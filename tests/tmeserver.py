"""A loopback stand-in for t.me: channel pages with ``?before=`` pagination, and faults."""

from __future__ import annotations

import base64
import bisect
import contextlib
import json
import re
import socket
import ssl
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

import trustme

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


WRAP_START = '<div class="tgme_widget_message_wrap'
HISTORY_END = re.compile(r'<div class="tgme_widget_message_centered js-messages_more_wrap">(?!.*data-before)|</section>')
DATA_POST = re.compile(r'data-post="[^"/]+/(\d+)"')


def message_wraps(html: str) -> dict[int, str]:
    """Cut a captured channel page into its message wraps, keyed by post id, byte for byte."""
    starts = [m.start() for m in re.finditer(re.escape(WRAP_START), html)]
    end = HISTORY_END.search(html, starts[-1]) if starts else None
    bounds = starts + [end.start() if end else len(html)]
    wraps = {}
    for start, stop in zip(bounds, bounds[1:], strict=False):
        piece = html[start:stop]
        found = DATA_POST.search(piece)
        if found:
            wraps[int(found[1])] = piece
    return wraps


class Posts(dict[int, str]):
    """id -> message wrap html, keeping its ids sorted for paging (large benchmark channels)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self._sorted: list[int] | None = None

    def __setitem__(self, key: int, value: str) -> None:
        if key not in self:
            self._sorted = None
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        self._sorted = None
        super().__delitem__(key)

    def pop(self, key: int, *default: object) -> str:  # type: ignore[override]
        self._sorted = None
        return super().pop(key, *default)  # type: ignore[return-value]

    def update(self, *args: object, **kwargs: str) -> None:  # type: ignore[override]
        self._sorted = None
        super().update(*args, **kwargs)  # type: ignore[arg-type]

    def ids(self) -> list[int]:
        if self._sorted is None:
            self._sorted = sorted(self)
        return self._sorted


@dataclass
class FakeChannel:
    username: str
    title: str = "Test channel"
    description: str = "A channel served from loopback"
    posts: Posts = field(default_factory=Posts)  # id -> message wrap html
    hidden: dict[int, str] = field(default_factory=dict)  # off the pages, still on /<name>/<id>
    page_size: int = PAGE_SIZE
    content_type: str = "text/html; charset=utf-8"  # the header: t.me's pages are UTF-8 whatever it says
    encoding: str = "utf-8"  # how the page's text is turned into bytes on the wire

    def delete(self, post_id: int) -> None:
        del self.posts[post_id]

    def hide(self, post_id: int) -> None:
        self.hidden[post_id] = self.posts.pop(post_id)

    def embed(self, post_id: int) -> bytes:
        message = self.posts.get(post_id) or self.hidden.get(post_id)
        return EMBED.substitute(message=message).encode() if message else NOT_FOUND

    def add(self, post_id: int, html: str | None = None, **kwargs: object) -> None:
        self.posts[post_id] = html or synthetic_post(self.username, post_id, title=self.title, **kwargs)

    def __post_init__(self) -> None:
        if not isinstance(self.posts, Posts):
            self.posts = Posts(self.posts)

    def render(self, before: int | None) -> str:
        every = self.posts.ids()
        end = len(every) if before is None else bisect.bisect_left(every, before)
        ids = every[max(0, end - self.page_size):end]
        older = bool(ids) and every[0] < ids[0]
        newer = bool(ids) and every[-1] > ids[-1]
        return PAGE.substitute(
            title=self.title, username=self.username, description=self.description,
            counters='<div class="tgme_channel_info_counter"><span class="counter_value">'
                     f'{len(self.posts)}</span> <span class="counter_type">subscribers</span></div>',
            messages="".join(self.posts[i] for i in ids),
            more_before=MORE.format(u=self.username, k="before", v=ids[0]) if older else "",
            more_after=MORE.format(u=self.username, k="after", v=ids[-1]) if newer else "",
        )


@dataclass
class FakeSite:
    """A web site reached through the fake server acting as proxy: path -> answer."""

    host: str
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    # (method, path, request headers, request body) -> an answer, or None for the routes: a site
    # whose answer depends on the request (a wall that lets a cookie through).
    dynamic: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes] | None] | None = None

    def page(self, path: str, body: str | bytes, status: int = 200, content_type: str = "text/html; charset=utf-8",
             **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, {"Content-Type": content_type, **headers}, data)

    def respond(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes = b"") -> tuple[int, dict[str, str], bytes, float]:
        answer = self.dynamic(method, path, headers or {}, body) if self.dynamic is not None else None
        status, answer_headers, content = answer or self.routes.get(
            path, (404, {"Content-Type": "text/html"}, b"<html>not found</html>"))
        return status, dict(answer_headers), content, 0.0


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"fault"
    stall: float = 0.0  # sleep this long before answering (a timeout, for the client)
    cut: int | None = None  # announce the whole body, send this many bytes, drop the connection


class FakeTelegram:
    """``/s/<name>`` pages, ``/<name>`` info pages, redirects for unknown names, queued faults."""

    def __init__(self) -> None:
        self.channels: dict[str, FakeChannel] = {}
        self.sites: dict[str, FakeSite] = {}
        self.ca = trustme.CA()
        self._tls: dict[str, ssl.SSLContext] = {}
        self.faults: deque[Fault] = deque()
        self.requests: list[str] = []
        self.delay = 0.0
        self.outage: Callable[[str], bool] | None = None  # paths that answer 503 while set
        # Answers that take the place of the channel's own for one path (logged like any request).
        self.overrides: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.once: dict[str, tuple[int, dict[str, str], bytes]] = {}  # as overrides, for one request
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

    def site(self, host: str) -> FakeSite:
        return self.sites.setdefault(host, FakeSite(host))

    def write_ca(self, path: Path) -> Path:
        """The PEM of the private CA that signs every https site of this server."""
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def tls_for(self, host: str) -> ssl.SSLContext:
        with self._lock:
            if host not in self._tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                self.ca.issue_cert(host).configure_cert(context)
                self._tls[host] = context
            return self._tls[host]

    def override(self, path: str, body: str | bytes, status: int = 200,
                 content_type: str = "text/html; charset=utf-8") -> None:
        """Answer ``path`` (with its query) with this instead of what the channel would show."""
        self.overrides[path] = (status, {"Content-Type": content_type}, body.encode() if isinstance(body, str) else body)

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
        if path.startswith(("http://", "https://")):  # asked as a proxy
            parts = urlsplit(path)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if parts.netloc != urlsplit(self.url).netloc:
                return self.respond_site(parts.hostname or "", target)
            path = target
        with self._lock:
            self.requests.append(path)
            if self.faults:
                fault = self.faults.popleft()
                if fault.cut is not None:
                    return fault.status, {**fault.headers, "X-Cut": str(fault.cut)}, fault.body, fault.stall
                return fault.status, fault.headers, fault.body, fault.stall
            if self.outage is not None and self.outage(path):
                return 503, {}, b"temporarily down", 0.0
            if path in self.once:
                status, headers, body = self.once.pop(path)
                return status, headers, body, self.delay
            if path in self.overrides:
                status, headers, body = self.overrides[path]
                return status, headers, body, self.delay
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 2 and segments[0] == "s":
            channel = self.channels.get(segments[1].lower())
            if channel is None:
                return 302, {"Location": f"/{segments[1]}"}, b"", 0.0
            before = parse_qs(parts.query).get("before", [None])[0]
            body = channel.render(int(before) if before else None)
            return 200, {"Content-Type": channel.content_type}, body.encode(channel.encoding), self.delay
        if len(segments) == 2 and segments[1].isdigit():
            channel = self.channels.get(segments[0].lower())
            if channel is not None:
                body = channel.embed(int(segments[1]))
                return 200, {"Content-Type": "text/html; charset=utf-8"}, body, 0.0
        if len(segments) == 1:
            body = NO_PREVIEW.substitute(username=segments[0]).encode()
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body, 0.0
        return 404, {}, b"not found", 0.0

    def respond_site(self, host: str, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                     body: bytes = b"") -> tuple[int, dict[str, str], bytes, float]:
        with self._lock:
            self.requests.append(f"//{host}{path}" if method == "GET" else f"{method} //{host}{path}")
            if self.faults:
                fault = self.faults.popleft()
                return fault.status, fault.headers, fault.body, fault.stall
        return self.sites.get(host, FakeSite(host)).respond(path, method, headers, body)

    def site_requests(self, host: str) -> list[str]:
        return [r[len(host) + 2:] for r in self.requests if r.startswith(f"//{host}/")]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections stay open between requests, as t.me's and mid.ru's do
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for an ACK between
            tunnel_host: str | None = None
            tls: ssl.SSLSocket | None = None

            def finish(self) -> None:
                with contextlib.suppress(OSError, ssl.SSLError):
                    super().finish()
                if self.tls is not None:
                    self.tls.close()

            def do_CONNECT(self) -> None:  # noqa: N802
                """https through the proxy: terminate TLS with a certificate from our private CA."""
                host = self.path.rsplit(":", 1)[0]
                self.send_response(200, "Connection established")
                self.end_headers()
                try:
                    tls = fake.tls_for(host).wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    self.close_connection = True
                    return
                self.connection = self.tls = tls
                self.rfile = tls.makefile("rb", buffering=0)
                self.wfile = tls.makefile("wb", buffering=0)
                self.tunnel_host = host
                self.close_connection = False
                while not self.close_connection:
                    self.handle_one_request()

            def do_POST(self) -> None:  # noqa: N802
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                sent = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if self.command == "POST" else b""
                if self.tunnel_host is not None:
                    status, headers, body, stall = fake.respond_site(
                        self.tunnel_host, self.path, self.command, {k.lower(): v for k, v in self.headers.items()},
                        sent)
                else:
                    status, headers, body, stall = fake.respond(self.path)
                if stall:
                    time.sleep(stall)
                cut = headers.pop("X-Cut", None)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if cut is not None:  # the connection drops mid-body
                        self.wfile.write(body[:int(cut)])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    self.close_connection = True

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
