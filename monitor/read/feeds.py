"""Atom feeds (RFC 4287) of the archive, written by feedgen: a channel, edits, deletions, pages, an alert rule."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator

from monitor.read.paths import LISTS, Paths
from monitor.read.render import diff, text_html
from storage.db import Connection
from storage.reading import get_alerts_list, get_channel, get_deletions, get_edits, get_pages_list, get_timeline

FEED_SIZE = 50  # entries a feed holds: the newest
# Characters XML 1.0 cannot hold (a post may carry them): dropped from feed text.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
TITLE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Exported:
    """What a static export holds: a feed in it names only those posts ((channel lowered, id)) and pages."""

    posts: set[tuple[str, int]]
    pages: set[str]

    def keeps(self, row: dict[str, Any]) -> bool:
        if row.get("channel"):
            return (str(row["channel"]).lower(), int(row["post_id"])) in self.posts
        return (row.get("page_url") or row.get("url")) in self.pages


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    title: str
    link: str
    updated: str
    html: str
    published: str | None = None


def atom(feed_id: str, title: str, self_link: str, page_link: str, entries: Sequence[Entry],
         author: str = "legation") -> bytes:
    """The feed as bytes; an empty one is still valid (its updated time is now)."""
    feed = FeedGenerator()
    feed.id(feed_id)
    feed.title(_xml(title))
    feed.author(name=_xml(author))
    feed.link(href=self_link, rel="self", type="application/atom+xml")
    feed.link(href=page_link, rel="alternate", type="text/html")
    feed.updated(max((e.updated for e in entries), default=None) or _now())
    feed.generator("legation")
    for item in entries:
        entry = feed.add_entry(order="append")
        entry.id(item.id)
        entry.title(_xml(item.title) or "(no text)")
        entry.link(href=item.link, rel="alternate", type="text/html")
        entry.updated(item.updated)
        if item.published:
            entry.published(item.published)
        entry.content(_xml(item.html), type="html")
    return bytes(feed.atom_str(pretty=True))


async def write_feed(conn: Connection, kind: str, name: str | None, base: str,
                     paths: Paths | None = None, exported: Exported | None = None) -> bytes | None:
    """The Atom feed ``kind`` (channel, edits, deletions, pages, alerts) of ``name`` (a channel, a
    rule); entries link to ``base`` + the reading room's paths (of a static export: only to what
    it holds, ``exported``). None: no such channel."""
    paths = paths or Paths()

    def kept(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows if exported is None else [row for row in rows if exported.keeps(row)]

    if kind == "channel":
        channel = await get_channel(conn, name or "")
        if channel is None:
            return None
        username = channel["username"]
        posts = kept(await get_timeline(conn, username, None, FEED_SIZE))
        return atom(f"urn:legation:channel:{username}", channel["title"] or username, base + paths.feed(username),
                    base + paths.channel(username), post_entries(posts, paths, base), author=username)
    if kind == "alerts":
        alerts = kept(await get_alerts_list(conn, FEED_SIZE, name))
        return atom(f"urn:legation:alerts:{name}", f"legation alerts: {name}", base + paths.feed(f"alerts/{name}"),
                    base + paths.list("alerts"), alert_entries(alerts, paths, base))
    assert kind in LISTS
    if kind == "edits":
        entries = edit_entries(kept(await get_edits(conn, FEED_SIZE)), paths, base)
    elif kind == "deletions":
        entries = deletion_entries(kept(await get_deletions(conn, FEED_SIZE)), paths, base)
    else:
        entries = page_entries(kept(await get_pages_list(conn, "ok", FEED_SIZE)), paths, base)
    return atom(f"urn:legation:{kind}", f"legation: {kind}", base + paths.feed(kind), base + paths.list(kind), entries)


def post_entries(posts: Sequence[dict[str, Any]], paths: Paths, base: str) -> list[Entry]:
    return [Entry(id=f"urn:legation:post:{p['channel']}:{p['post_id']}", title=_headline(p["text"]),
                  link=base + paths.post(p["channel"], p["post_id"]),
                  updated=p["version_seen_at"] or p["date"] or p["first_seen_at"], published=p["date"],
                  html=str(text_html(p["text"])) + _deleted(p)) for p in posts]


def edit_entries(edits: Sequence[dict[str, Any]], paths: Paths, base: str) -> list[Entry]:
    return [Entry(id=f"urn:legation:edit:{e['channel']}:{e['post_id']}:{e['version']}",
                  title=f"{e['channel']}/{e['post_id']} edited: {_headline(e['text'])}",
                  link=base + paths.post(e["channel"], e["post_id"]), updated=e["seen_at"],
                  html=str(diff(e["previous_text"], e["text"]))) for e in edits]


def deletion_entries(deletions: Sequence[dict[str, Any]], paths: Paths, base: str) -> list[Entry]:
    return [Entry(id=f"urn:legation:deletion:{d['channel']}:{d['post_id']}",
                  title=f"{d['channel']}/{d['post_id']} deleted: {_headline(d['text'])}",
                  link=base + paths.post(d["channel"], d["post_id"]), updated=d["deleted_at"], published=d["date"],
                  html=str(text_html(d["text"]))) for d in deletions]


def page_entries(pages: Sequence[dict[str, Any]], paths: Paths, base: str) -> list[Entry]:
    return [Entry(id=f"urn:legation:page:{p['url']}:{p['version']}", title=p["title"] or p["url"],
                  link=base + paths.page(p["url"]), updated=p["fetched_at"], published=p["published_at"],
                  html=str(text_html(p.get("text") or p["url"]))) for p in pages]


def alert_entries(alerts: Sequence[dict[str, Any]], paths: Paths, base: str) -> list[Entry]:
    entries = []
    for a in alerts:
        link = paths.post(a["channel"], a["post_id"]) if a["channel"] else paths.page(a["page_url"])
        where = f"{a['channel']}/{a['post_id']}" if a["channel"] else (a["page_title"] or a["page_url"])
        entries.append(Entry(id=f"urn:legation:alert:{a['id']}", title=f"{a['rule']}: {where}", link=base + link,
                             updated=a["created_at"],
                             html=str(text_html(f"{a['kind']} matched {', '.join(a['terms'])}\n\n{a['context'] or ''}"))))
    return entries


def _headline(text: str | None) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1] + "…"


def _deleted(post: dict[str, Any]) -> str:
    return str(text_html(f"\n\nDeleted {post['deleted_at']}")) if post.get("deleted_at") else ""


def _xml(text: str) -> str:
    return NOT_XML.sub("", text)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
