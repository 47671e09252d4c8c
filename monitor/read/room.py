"""The reading room: an ASGI app serving the archive as pages and Atom feeds, read-only.

URLs mirror t.me (``/<channel>``, ``/<channel>/<post_id>``); ``/sql/`` is Datasette's when
one is given. No page runs a script: the Content-Security-Policy allows none.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from monitor.read import feeds
from monitor.read.cite import gather_citation, write_wacz
from monitor.read.paths import Paths
from monitor.read.render import render
from monitor.read.search import build_query
from storage.channels import get_status
from storage.db import Connection
from storage.errors import SearchQueryError
from storage.models import ChannelStatus, utc_in
from storage.reading import (
    get_alert_rules,
    get_alerts_list,
    get_attachment,
    get_channels,
    get_deletions,
    get_edits,
    get_page,
    get_pages_list,
    get_post,
    get_stored_file,
    get_timeline,
)
from storage.search import search_pages, search_posts

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                    Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]
PAGE_SIZE = 30  # posts on one page of a timeline
CHANNELS_TTL = 60.0  # seconds the channels' counts are reused: counting a million posts takes 50 ms
LIST_SIZE = 100
SEARCH_SIZE = 50
CHANNEL = r"[A-Za-z][A-Za-z0-9_]{2,31}"
PICTURE_PATH = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{2,5}$")  # media_files.path, nothing else
PAGE_STATUSES = ("", "ok", "pending", "blocked", "failed", "gone")
STATIC = Path(__file__).resolve().parent / "static"
# No script, no frame, no plugin, nothing from elsewhere: archived text can never run.
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
FILE_HEADERS = {**PAGE_HEADERS, "content-security-policy": "sandbox; default-src 'none'"}


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=lambda: PAGE_HEADERS)


class NotFound(Exception):
    """The page asked for does not exist in the archive."""


class ReadingRoom:
    """The app: ``conn`` an open archive (read only), ``health`` says what is wrong with a channel
    (None for a channel not followed), ``sql`` Datasette's app served under /sql/."""

    def __init__(self, conn: Connection, *, web_url: str, languages: tuple[str, ...], media_dir: Path | None,
                 health: Callable[[ChannelStatus], list[str] | None] | None = None, sql: ASGIApp | None = None):
        self.conn, self.web_url, self.languages, self.media_dir = conn, web_url.rstrip("/"), languages, media_dir
        self.health, self.sql = health, sql
        self.paths = Paths(sql_served=sql is not None)
        self._overview: tuple[float, list[dict[str, Any]]] | None = None
        self.routes: list[tuple[re.Pattern[str], Callable[..., Awaitable[Response]]]] = [
            (re.compile(pattern), handler) for pattern, handler in (
                (r"/", self.channels), (r"/-/room\.css", self.css), (r"/search", self.search),
                (r"/edits", self.edits), (r"/deletions", self.deletions), (r"/pages", self.pages),
                (r"/alerts", self.alerts), (r"/page", self.page), (r"/attachment", self.attachment),
                (r"/media/(?P<path>.+)", self.media), (r"/(?P<kind>edits|deletions|pages)\.atom", self.feed),
                (r"/(?P<kind>alerts)/(?P<name>[^/]+)\.atom", self.feed), (rf"/(?P<name>{CHANNEL})\.atom", self.feed),
                (rf"/s/(?P<channel>{CHANNEL})/?", self.preview_form), (rf"/(?P<channel>{CHANNEL})/?", self.timeline),
                (rf"/(?P<channel>{CHANNEL})/(?P<post_id>\d{{1,18}})/?", self.post),
                (rf"/(?P<channel>{CHANNEL})/(?P<post_id>\d{{1,18}})\.wacz", self.citation),
            )]

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if self.sql is not None and (path == "/sql" or path.startswith("/sql/")):
            await self.sql(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            response = Response(405, b"read-only", "text/plain; charset=utf-8")
        else:
            response = await self._respond(path, _query(scope), _base(scope))
        headers = [(b"content-type", response.content_type.encode()),
                   (b"content-length", str(len(response.body)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else response.body})

    async def _respond(self, path: str, query: dict[str, str], base: str) -> Response:
        for pattern, handler in self.routes:
            if (match := pattern.fullmatch(path)) is not None:
                try:
                    return await handler(query=query, base=base, **match.groupdict())
                except NotFound as exc:
                    return self._html(404, "error.html", title="Not in the archive", message=str(exc))
        return self._html(404, "error.html", title="Not in the archive", message=f"Nothing is archived at {path}.")

    def _html(self, code: int, template: str, **context: Any) -> Response:
        return Response(code, render(template, self.paths, web_url=self.web_url, **context).encode())

    async def _channels(self, refresh: bool = False) -> list[dict[str, Any]]:
        """The channels with their counts, as read at most CHANNELS_TTL ago (or now, to ``refresh``)."""
        now = time.monotonic()
        if refresh or self._overview is None or now - self._overview[0] > CHANNELS_TTL:
            self._overview = (now, await get_channels(self.conn))
        return [dict(channel) for channel in self._overview[1]]

    async def _channel(self, name: str) -> dict[str, Any]:
        for refresh in (False, True):  # a channel archived since the counts were read: read them again
            found = [c for c in await self._channels(refresh) if c["username"].lower() == name.lower()]
            if found:
                return found[0]
        raise NotFound(f"The archive holds no channel {name}.")

    async def channels(self, query: dict[str, str], base: str) -> Response:
        channels = await self._channels()
        if self.health is not None:
            statuses = {s.username: s for s in await get_status(self.conn, utc_in(-86400))}
            for channel in channels:
                status = statuses.get(channel["username"])
                channel["problems"] = self.health(status) if status is not None else None
        else:
            for channel in channels:
                channel["problems"] = None
        return self._html(200, "channels.html", title="Channels", channels=channels,
                          feeds=[("edits", "Edits"), ("deletions", "Deletions")])

    async def timeline(self, query: dict[str, str], base: str, channel: str) -> Response:
        found = await self._channel(channel)
        before = _number(query.get("before"))
        posts = await get_timeline(self.conn, found["username"], before, PAGE_SIZE + 1)
        older = posts[PAGE_SIZE - 1]["post_id"] if len(posts) > PAGE_SIZE else None
        return self._html(200, "timeline.html", title=found["title"] or found["username"], channel=found,
                          posts=posts[:PAGE_SIZE], before=before, older=older,
                          feeds=[(found["username"], f"{found['username']} posts")])

    async def post(self, query: dict[str, str], base: str, channel: str, post_id: str) -> Response:
        post = await get_post(self.conn, channel, int(post_id))
        if post is None:
            raise NotFound(f"The archive holds no post {post_id} of {channel}.")
        title = f"{post['channel']}/{post['post_id']}"
        return self._html(200, "post.html", title=title, post=post,
                          archive_url=base + self.paths.post(post["channel"], post["post_id"]))

    async def citation(self, query: dict[str, str], base: str, channel: str, post_id: str) -> Response:
        """The post as `legation cite` packs it: every version, its pages and media, and their evidence."""
        cited = await self.conn.run(gather_citation, channel, int(post_id), self.media_dir)
        if cited is None:
            raise NotFound(f"The archive holds no post {post_id} of {channel}.")
        out = io.BytesIO()
        write_wacz(cited, out)
        name = f"{cited.username}-{cited.post_id}.wacz"
        return Response(200, out.getvalue(), "application/wacz",
                        {**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})

    async def page(self, query: dict[str, str], base: str) -> Response:
        page = await get_page(self.conn, query.get("url", ""))
        if page is None:
            raise NotFound("The archive holds no such release page.")
        return self._html(200, "page.html", title=page["title"] or page["url"], page=page, lang=page["lang"] or "en")

    async def search(self, query: dict[str, str], base: str) -> Response:
        words, channel, kind = query.get("q", "").strip(), query.get("channel") or None, query.get("kind", "")
        since, until = _day(query.get("since")), _day(query.get("until"))
        posts: list[Any] = []
        pages: list[Any] = []
        error = None
        if words:
            wanted = build_query(words, self.languages)
            try:
                if kind != "pages":
                    posts = await search_posts(self.conn, wanted.exact, wider=wanted.wider, channel=channel,
                                               since=since, until=until, limit=SEARCH_SIZE)
                if kind != "posts":
                    pages = await search_pages(self.conn, wanted.exact, wider=wanted.wider, channel=channel,
                                               since=since, until=until, limit=SEARCH_SIZE)
            except SearchQueryError as exc:
                error = f"The search could not be run: {exc.reason}"
        return self._html(200, "search.html", title=f"Search: {words}" if words else "Search", query=words,
                          channel=channel, since=query.get("since"), until=query.get("until"), kind=kind,
                          channels=await self._channels(), posts=posts, pages=pages, error=error)

    async def edits(self, query: dict[str, str], base: str) -> Response:
        return self._html(200, "edits.html", title="Edits", edits=await get_edits(self.conn, LIST_SIZE),
                          feeds=[("edits", "Edits")])

    async def deletions(self, query: dict[str, str], base: str) -> Response:
        return self._html(200, "deletions.html", title="Deletions",
                          deletions=await get_deletions(self.conn, LIST_SIZE), feeds=[("deletions", "Deletions")])

    async def pages(self, query: dict[str, str], base: str) -> Response:
        status = query.get("status") if query.get("status") in PAGE_STATUSES else None
        return self._html(200, "pages.html", title="Release pages", statuses=PAGE_STATUSES, status=status or "",
                          pages=await get_pages_list(self.conn, status or None, LIST_SIZE),
                          feeds=[("pages", "Release pages")])

    async def alerts(self, query: dict[str, str], base: str) -> Response:
        rules = await get_alert_rules(self.conn)
        return self._html(200, "alerts.html", title="Alerts", alerts=await get_alerts_list(self.conn, LIST_SIZE),
                          rules=rules, feeds=[(f"alerts/{r}", f"Alerts: {r}") for r in rules])

    async def attachment(self, query: dict[str, str], base: str) -> Response:
        found = await get_attachment(self.conn, query.get("page", ""), query.get("url", ""))
        if found is None:
            raise NotFound("The archive holds no such document.")
        content_type, data = found
        name = quote(Path(query["url"].split("?", 1)[0]).name or "document")
        return Response(200, data, content_type or "application/octet-stream",
                        {**FILE_HEADERS, "content-disposition": f"attachment; filename*=UTF-8''{name}"})

    async def media(self, query: dict[str, str], base: str, path: str) -> Response:
        mime = await get_stored_file(self.conn, path) if PICTURE_PATH.match(path) else None
        if mime is None or self.media_dir is None or not (self.media_dir / path).is_file():
            raise NotFound("The archive holds no such file.")
        return Response(200, (self.media_dir / path).read_bytes(), mime, FILE_HEADERS)

    async def css(self, query: dict[str, str], base: str) -> Response:
        return Response(200, (STATIC / "room.css").read_bytes(), "text/css; charset=utf-8")

    async def preview_form(self, query: dict[str, str], base: str, channel: str) -> Response:
        """``/s/<channel>``, t.me's preview address: the channel's timeline."""
        return Response(301, b"", headers={**PAGE_HEADERS, "location": self.paths.channel(channel)})

    async def feed(self, query: dict[str, str], base: str, kind: str = "channel", name: str | None = None) -> Response:
        data = await feeds.write_feed(self.conn, kind, name, base, self.paths)
        if data is None:
            raise NotFound(f"The archive holds no channel {name}.")
        return Response(200, data, "application/atom+xml; charset=utf-8")


def _query(scope: dict[str, Any]) -> dict[str, str]:
    pairs = parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in pairs.items()}


def _base(scope: dict[str, Any]) -> str:
    """``http://host:port`` as the reader reached the room (for citations and feed links)."""
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1")
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]{1,255}", host):
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 18 else None


def _day(value: str | None) -> str | None:
    return f"{value}T00:00:00Z" if value and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None


async def _lifespan(receive: Callable[[], Awaitable[dict[str, Any]]],
                    send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
