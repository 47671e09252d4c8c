"""``legation export-site``: the reading room as static files with relative links, its media and feeds.

The same templates as the server, through :class:`Paths` in its static form, so that the export
opens from ``file://``, zipped or served by any web server. A file whose bytes would not change
is not written again: re-running it after a day of capture rewrites only what that day changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.read.feeds import Exported, write_feed
from monitor.read.paths import Paths, page_file
from monitor.read.render import render
from monitor.read.room import LIST_SIZE, PAGE_SIZE, PAGE_STATUSES, STATIC
from storage.db import Connection
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
    get_post_ids,
    get_timeline,
)

PROGRESS_EVERY = 1000  # posts between two progress lines


@dataclass(slots=True)
class SiteReport:
    written: int = 0
    unchanged: int = 0
    posts: int = 0
    pages: int = 0


class SiteWriter:
    """Writes the export under ``root``; ``progress`` is told how far it got."""

    def __init__(self, conn: Connection, root: Path, *, web_url: str, media_dir: Path | None,
                 channels: tuple[str, ...] = (), since: str | None = None,
                 progress: Callable[[str], None] = lambda line: None) -> None:
        self.conn, self.root, self.web_url, self.media_dir = conn, root, web_url.rstrip("/"), media_dir
        self.wanted = {name.lower() for name in channels}
        self.since, self.progress = since, progress
        self.report = SiteReport()
        self.page_urls: set[str] = set()
        self.exported: set[tuple[str, int]] = set()  # (channel lowered, post id) of the posts written

    async def write(self) -> SiteReport:
        channels = [c for c in await get_channels(self.conn) if not self.wanted or c["username"].lower() in self.wanted]
        ids = {c["username"]: await get_post_ids(self.conn, c["username"], self.since) for c in channels}
        self.exported = {(name.lower(), post_id) for name, posts in ids.items() for post_id in posts}
        for channel in channels:
            channel["problems"] = None
        self._file("room.css", (STATIC / "room.css").read_bytes())
        self._html("index.html", "channels.html", title="Channels", channels=channels,
                   feeds=[("edits", "Edits"), ("deletions", "Deletions")])
        for channel in channels:
            await self._channel(channel, ids[channel["username"]])
        await self._lists()
        for url in sorted(self.page_urls):
            await self._page(url)
        return self.report

    async def _channel(self, channel: dict[str, Any], ids: list[int]) -> None:
        """The timeline in pages of PAGE_SIZE (``before-<id>.html`` as the server's ``?before=<id>``),
        and each post's own page."""
        name, before = channel["username"], None
        for start in range(0, max(len(ids), 1), PAGE_SIZE):
            chunk = set(ids[start:start + PAGE_SIZE])
            posts = [p for p in await get_timeline(self.conn, name, before, PAGE_SIZE) if p["post_id"] in chunk]
            older = ids[start + PAGE_SIZE - 1] if start + PAGE_SIZE < len(ids) else None
            here = f"{name}/index.html" if before is None else f"{name}/before-{before}.html"
            for post in posts:
                await self._post(name, post["post_id"])
            self._html(here, "timeline.html", title=channel["title"] or name, channel=channel, posts=posts,
                       before=before, older=older, feeds=[(name, f"{name} posts")])
            before = older
        self._feed(f"{name}.atom", await write_feed(self.conn, "channel", name, "", Paths(True, f"{name}.atom"),
                                                    self._exported()))

    async def _post(self, name: str, post_id: int) -> None:
        post = await get_post(self.conn, name, post_id)
        if post is None:
            return
        self.report.posts += 1
        if self.report.posts % PROGRESS_EVERY == 0:
            self.progress(f"{self.report.posts} posts written")
        for page in post["page_details"]:
            if page is not None:
                self.page_urls.add(page["url"])
                self.page_urls.update(t["url"] for t in page["translations"])
        for picture in post["pictures"]:
            self._media(picture["path"])
        here = f"{name}/{post_id}.html"
        post["page_details"] = [self._exported_links(p) for p in post["page_details"] if p is not None]
        self._html(here, "post.html", title=f"{name}/{post_id}", post=post, web_url=self.web_url,
                   archive_url=f"{name}/{post_id}.html")

    async def _page(self, url: str) -> None:
        page = await get_page(self.conn, url)
        if page is None:
            return
        self.report.pages += 1
        here = f"pages/{page_file(url)}"
        for attachment in page["attachments"]:
            if attachment["status"] == "ok" and (found := await get_attachment(self.conn, url, attachment["url"])):
                self._file(Paths(True).attachment(url, attachment["url"], attachment["sha256"]), found[1])
        self._html(here, "page.html", title=page["title"] or page["url"], page=self._exported_links(page),
                   lang=page["lang"] or "en")

    def _exported_links(self, page: dict[str, Any]) -> dict[str, Any]:
        """The page with only the links the export can follow: posts it holds, pages it writes."""
        page = dict(page)
        page["linked_by"] = [p for p in page["linked_by"] if (p["channel"].lower(), p["post_id"]) in self.exported]
        return page

    async def _lists(self) -> None:
        exported = self.exported

        def kept(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r for r in rows if (r["channel"].lower(), r["post_id"]) in exported]

        self._html("edits.html", "edits.html", title="Edits", edits=kept(await get_edits(self.conn, LIST_SIZE)),
                   feeds=[("edits", "Edits")])
        self._html("deletions.html", "deletions.html", title="Deletions",
                   deletions=kept(await get_deletions(self.conn, LIST_SIZE)), feeds=[("deletions", "Deletions")])
        for status in PAGE_STATUSES:
            pages = [p for p in await get_pages_list(self.conn, status or None, LIST_SIZE) if p["url"] in self.page_urls]
            self._html(f"pages-{status}.html" if status else "pages.html", "pages.html", title="Release pages",
                       statuses=PAGE_STATUSES, status=status, pages=pages, feeds=[("pages", "Release pages")])
        rules = await get_alert_rules(self.conn)
        alerts = [a for a in await get_alerts_list(self.conn, LIST_SIZE)
                  if (a["channel"] and (a["channel"].lower(), a["post_id"]) in exported)
                  or (not a["channel"] and a["page_url"] in self.page_urls)]
        self._html("alerts.html", "alerts.html", title="Alerts", alerts=alerts, rules=rules,
                   feeds=[(f"alerts/{r}", f"Alerts: {r}") for r in rules])
        for name in ("edits", "deletions", "pages"):
            self._feed(f"{name}.atom", await write_feed(self.conn, name, None, "", Paths(True, f"{name}.atom"),
                                                        self._exported()))
        for rule in rules:
            here = f"alerts/{rule}.atom"
            self._feed(here, await write_feed(self.conn, "alerts", rule, "", Paths(True, here), self._exported()))

    def _exported(self) -> Exported:
        return Exported(self.exported, self.page_urls)

    def _html(self, here: str, template: str, **context: Any) -> None:
        context.setdefault("web_url", self.web_url)
        self._file(here, render(template, Paths(True, here), **context).encode())

    def _feed(self, here: str, data: bytes | None) -> None:
        if data is not None:
            self._file(here, data)

    def _media(self, path: str) -> None:
        source = self.media_dir / path if self.media_dir is not None else None
        if source is not None and source.is_file():
            target = self.root / "media" / path
            if not target.exists() or target.stat().st_size != source.stat().st_size:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)  # named by its SHA-256: same name, same bytes
                self.report.written += 1
            else:
                self.report.unchanged += 1

    def _file(self, here: str, data: bytes) -> None:
        target = self.root / here
        if target.exists() and target.read_bytes() == data:
            self.report.unchanged += 1
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        partial.replace(target)  # a reader (or a crash) never sees half a file
        self.report.written += 1
