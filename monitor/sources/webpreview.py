"""The no-account source: ``https://t.me/s/<channel>`` pages parsed into post records.

t.me's markup drifts, so every lookup here may come back empty: a missing element
is a missing field, never a crash. bs4 objects do not leave this module.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment

from monitor.errors import ChannelUnavailable, FetchFailed
from monitor.http import HttpClient
from monitor.links import find_urls, make_links, unescape_href
from storage.models import ChannelInfo, Link, Post, format_timestamp

log = structlog.get_logger(__name__)

SUFFIXES = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
NUMBER = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*([KMB]?)\s*$", re.I)
MEDIA_CLASSES = {
    "tgme_widget_message_photo_wrap": "photo",
    "tgme_widget_message_service_photo": "photo",
    "tgme_widget_message_video_player": "video",
    "tgme_widget_message_roundvideo_player": "round_video",
    "tgme_widget_message_voice_player": "voice",
    "tgme_widget_message_document_wrap": "document",
    "tgme_widget_message_poll": "poll",
    "tgme_widget_message_sticker_wrap": "sticker",
    "tgme_widget_message_location_wrap": "location",
}
# Parts of a bubble that quote other content: never this post's media.
QUOTING_CLASSES = ("tgme_widget_message_reply", "tgme_widget_message_link_preview")
DOCUMENT_ICON_CLASSES = {"tgme_widget_message_document_icon", "accent_bg"}


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """One page of a channel's web preview."""

    channel: ChannelInfo
    posts: tuple[Post, ...]
    before: int | None = None  # the "load older" cursor, if the page shows one
    after: int | None = None
    has_history: bool = True  # False: not a channel preview page at all
    parse_errors: int = 0  # posts kept with their id only: the page proves no deletion


class PostCheck(enum.Enum):
    """What a single-post page says about a post."""

    EXISTS = "exists"
    DELETED = "deleted"
    UNKNOWN = "unknown"


class WebPreviewSource:
    """Fetches and parses preview pages through the shared :class:`HttpClient`."""

    def __init__(self, http: HttpClient, web_url: str = "https://t.me") -> None:
        self.http = http
        self.web_url = web_url.rstrip("/")

    async def check_post(self, username: str, post_id: int) -> PostCheck:
        """Ask the single-post page (``/<channel>/<id>?embed=1``) whether a post still exists."""
        response = await self.http.get(f"{self.web_url}/{username}/{post_id}?embed=1")
        if response.status != 200 or not is_complete(response.text):
            return PostCheck.UNKNOWN
        return parse_embed(response.text, post_id)

    def page_url(self, username: str, before: int | None = None) -> str:
        url = f"{self.web_url}/s/{username}"
        return f"{url}?before={before}" if before is not None else url

    async def fetch_page(self, username: str, before: int | None = None) -> ChannelPage:
        """The newest page, or the page of posts older than ``before``."""
        url = self.page_url(username, before)
        response = await self.http.get(url)
        if response.status == 404 or not urlsplit(response.url).path.startswith("/s/"):
            raise ChannelUnavailable(
                username,
                "no public web preview (t.me sends it to the channel's info page: it does not "
                "exist, is private, or has its preview disabled)",
            )
        if response.status != 200:
            raise FetchFailed(url, f"HTTP {response.status}")
        text = response.text
        if not is_complete(text):
            # lxml would repair it silently and the page's newest posts would be missing:
            # moving the cursor past them would leave a gap.
            raise FetchFailed(url, "truncated page (no closing </html>)")
        page = parse_channel_page(text, username)
        if not page.has_history:
            raise ChannelUnavailable(username, f"{url} is not a channel preview page")
        return page


def is_complete(html: str) -> bool:
    """t.me pages end with ``</html>`` (and a comment); a cut-off body does not."""
    return "</html>" in html[-4096:].lower()


def parse_channel_page(html: str | bytes, username: str) -> ChannelPage:
    """Parse a whole ``t.me/s/<channel>`` page; posts come back oldest first."""
    soup = BeautifulSoup(html, "lxml")
    posts: dict[int, Post] = {}
    telegram_id = None
    errors = 0
    for node in soup.find_all("div", class_="tgme_widget_message", attrs={"data-post": True}):
        post_id = _post_id(node.get("data-post"))
        if post_id is None:
            log.warning("post_without_id", channel=username, data_post=str(node.get("data-post")))
            errors += 1
            continue
        try:
            posts[post_id] = parse_message(node, post_id)
        except Exception as exc:  # defensive: one odd post must not lose the page
            log.warning("post_parse_failed", channel=username, post_id=post_id, error=repr(exc))
            posts[post_id] = Post(post_id=post_id)
            errors += 1
        telegram_id = telegram_id or _channel_id(node)
    more_before = soup.find("a", class_="tme_messages_more", attrs={"data-before": True})
    more_after = soup.find("a", class_="tme_messages_more", attrs={"data-after": True})
    history = soup.find(class_="tgme_channel_history") or soup.find(class_="tme_no_messages_found")
    return ChannelPage(
        channel=parse_channel_info(soup, username, telegram_id),
        posts=tuple(posts[k] for k in sorted(posts)),
        before=_int(more_before.get("data-before")) if more_before else None,
        after=_int(more_after.get("data-after")) if more_after else None,
        has_history=bool(history or posts),
        parse_errors=errors,
    )


def parse_embed(html: str, post_id: int) -> PostCheck:
    """A single-post page: the post, Telegram's "Post not found", or something else."""
    soup = BeautifulSoup(html, "lxml")
    error = soup.find(class_="tgme_widget_message_error")
    if error is not None and "not found" in error.get_text().lower():
        return PostCheck.DELETED
    for node in soup.find_all("div", class_="tgme_widget_message", attrs={"data-post": True}):
        if _post_id(node.get("data-post")) == post_id:
            return PostCheck.EXISTS
    return PostCheck.UNKNOWN


def parse_channel_info(soup: BeautifulSoup, username: str, telegram_id: int | None) -> ChannelInfo:
    """Title, description and counters from the page's right column (or its meta tags)."""
    info = soup.find(class_="tgme_channel_info")
    title = _text(info, "tgme_channel_info_header_title") if info else None
    description = None
    if info and (node := info.find(class_="tgme_channel_info_description")):
        description = plain_text(node) or None
    counters: dict[str, int] = {}
    for counter in soup.find_all(class_="tgme_channel_info_counter"):
        kind, value = _text(counter, "counter_type"), parse_count(_text(counter, "counter_value"))
        if kind and value is not None:
            counters[kind if kind.endswith("s") else kind + "s"] = value
    handle = _text(info, "tgme_channel_info_header_username") if info else None
    return ChannelInfo(
        username=(handle or "").lstrip("@") or username,
        telegram_id=telegram_id,
        title=title or _meta(soup, "og:title"),
        description=description or _meta(soup, "og:description"),
        subscribers=counters.get("subscribers"),
        counters=counters,
    )


def parse_message(node: Tag, post_id: int) -> Post:
    """One ``tgme_widget_message``; every element is optional."""
    bubble = node.find(class_="tgme_widget_message_bubble") or node
    text_node = _message_text_node(bubble)
    text = plain_text(text_node).strip() if text_node else None
    preview = _link_preview(bubble)
    forwarded = bubble.find(class_="tgme_widget_message_forwarded_from")
    forward_name = forwarded.find(class_="tgme_widget_message_forwarded_from_name") if forwarded else None
    reply_to, reply_url = _reply(bubble, node.get("data-post", ""))
    media = _media(bubble, node)
    grouped = _is_grouped(node) or any("post_id" in item for item in media)
    return Post(
        post_id=post_id,
        date=_date(node),
        text=text or None,
        html=text_node.decode_contents().strip() if text_node else None,
        views=parse_count(_text(node, "tgme_widget_message_views")),
        author=_text(node, "tgme_widget_message_from_author"),
        edited=_is_edited(node),
        forwarded_from=_clean(forward_name.get_text()) if forward_name else None,
        forwarded_from_url=_href(forward_name) if forward_name else None,
        reply_to=reply_to,
        reply_to_url=reply_url,
        grouped_id=post_id if grouped else None,
        media=media,
        link_preview=preview,
        service="service_message" in _classes(node),
        links=_links(text_node, text, preview),
    )


def _message_text_node(bubble: Tag) -> Tag | None:
    """The post's own text (not a reply quote); albums nest it twice."""
    node = bubble.find("div", class_="js-message_text")
    if node is None:
        return None
    while True:
        children = [c for c in node.children if isinstance(c, Tag)]
        only_text = not any(isinstance(c, NavigableString) and c.strip() for c in node.children)
        if len(children) == 1 and only_text and "js-message_text" in _classes(children[0]):
            node = children[0]
        else:
            return node


def plain_text(node: Tag) -> str:
    """Text with ``<br>`` as newlines and emoji kept; no markup."""
    parts: list[str] = []
    for element in node.descendants:
        if isinstance(element, Comment):
            continue
        if isinstance(element, NavigableString):
            parts.append(str(element))
        elif isinstance(element, Tag) and element.name == "br":
            parts.append("\n")
    return "".join(parts)


def _links(text_node: Tag | None, text: str | None, preview: dict[str, Any] | None) -> tuple[Link, ...]:
    candidates: list[tuple[str, str]] = []
    for anchor in text_node.find_all("a", href=True) if text_node else ():
        href = unescape_href(str(anchor["href"]).strip())
        label = anchor.get_text().strip()
        if not href.lower().startswith(("http://", "https://")) or _is_author_anchor(anchor):
            continue  # hashtags (?q=%23tag), in-page links, "X pinned ..." author names
        if label.startswith("@") and urlsplit(href).hostname in ("t.me", "telegram.me"):
            candidates.append((href, "mention"))
        elif _looks_like(label, href):
            candidates.extend((url, "text") for url in find_urls(href) or [href])
        else:
            candidates.append((href, "hidden"))
    candidates.extend((url, "text") for url in find_urls(text or ""))
    if preview and preview.get("url"):
        candidates.append((preview["url"], "preview"))
    return make_links(candidates)


def _is_author_anchor(anchor: Tag) -> bool:
    return "tgme_widget_message_author_name" in _classes(anchor)


def _looks_like(label: str, href: str) -> bool:
    """Is the anchor's text the URL itself (an auto-link) rather than a hidden link?"""
    def bare(u: str) -> str:
        return re.sub(r"^https?://(www\.)?", "", u, flags=re.I).rstrip("/").lower()

    return bool(label) and (bare(label) == bare(href) or bare(href).startswith(bare(label).rstrip("…")))


def _link_preview(bubble: Tag) -> dict[str, Any] | None:
    node = bubble.find("a", class_="tgme_widget_message_link_preview")
    if node is None:
        return None
    fields = {
        "url": unescape_href(str(node.get("href", ""))) or None,
        "site": _text(node, "link_preview_site_name"),
        "title": _text(node, "link_preview_title"),
        "description": _text(node, "link_preview_description"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _reply(bubble: Tag, data_post: Any) -> tuple[int | None, str | None]:
    node = bubble.find("a", class_="tgme_widget_message_reply")
    if node is None:
        return None, None
    url = _href(node)
    if not url:
        return None, None
    path = urlsplit(url).path.strip("/").split("/")
    own_channel = str(data_post).split("/")[0].lower()
    if len(path) >= 2 and path[-2].lower() == own_channel:
        return _int(path[-1]), url
    return None, url


def _media(bubble: Tag, node: Tag) -> tuple[dict[str, Any], ...]:
    items = []
    for element in _media_elements(bubble):
        kind = next(MEDIA_CLASSES[c] for c in _classes(element) if c in MEDIA_CLASSES)
        items.append(_media_item(kind, element, node))
    return tuple(items)


def _media_elements(bubble: Tag) -> Iterator[Tag]:
    for element in bubble.find_all(class_=list(MEDIA_CLASSES)):
        if not any(set(_classes(p)) & set(QUOTING_CLASSES) for p in element.parents if p is not bubble):
            yield element


def _media_item(kind: str, element: Tag, node: Tag) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind}
    href = _href(element) or ""
    if "?single" in href or "grouped_media_wrap" in _classes(element):
        item["post_id"] = _post_id(urlsplit(href).path)
    if kind in ("video", "round_video", "voice"):
        duration = element.find(class_=re.compile(r"_duration$"))
        item["duration"] = parse_duration(duration.get_text()) if duration else None
        label = _text(element, "message_media_not_supported_label") or ""
        if "not_supported" in _classes(element) or "too big" in label.lower():
            item["too_big"] = True
    elif kind == "document":
        item.update(_document(element))
    elif kind == "poll":
        item.update(_poll(element, node))
    elif kind == "location":
        item.update(_location(href))
    return {k: v for k, v in item.items() if v is not None}


def _document(element: Tag) -> dict[str, Any]:
    icon = element.find(class_="tgme_widget_message_document_icon")
    kinds = [c for c in (_classes(icon) if icon else []) if c not in DOCUMENT_ICON_CLASSES]
    return {
        "title": _text(element, "tgme_widget_message_document_title"),
        "extra": _text(element, "tgme_widget_message_document_extra"),
        "kind": kinds[0] if kinds else None,
    }


def _poll(element: Tag, node: Tag) -> dict[str, Any]:
    question = element.find(class_="tgme_widget_message_poll_question")
    options = []
    for option in element.find_all(class_="tgme_widget_message_poll_option"):
        percent = _text(option, "tgme_widget_message_poll_option_percent") or ""
        entry = {"text": _text(option, "tgme_widget_message_poll_option_text"),
                 "percent": parse_count(percent.rstrip("%"))}
        options.append({k: v for k, v in entry.items() if v is not None})
    return {
        "question": plain_text(question).strip() if question else None,
        "poll_type": _text(element, "tgme_widget_message_poll_type"),
        "options": options,
        "voters": parse_count(_text(node, "tgme_widget_message_voters")),
    }


def _location(href: str) -> dict[str, Any]:
    values = parse_qs(urlsplit(href).query).get("q", [""])[0].split(",")
    try:
        return {"latitude": float(values[0]), "longitude": float(values[1])}
    except (ValueError, IndexError):
        return {}


def _date(node: Tag) -> str | None:
    anchor = node.find(class_="tgme_widget_message_date")
    time = (anchor or node).find("time", attrs={"datetime": True})
    if time is None:
        return None
    try:
        moment = datetime.fromisoformat(str(time["datetime"]))
    except ValueError:
        return None
    return format_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _is_edited(node: Tag) -> bool:
    meta = node.find(class_="tgme_widget_message_meta")
    return meta is not None and "edited" in meta.get_text().lower()


def _is_grouped(node: Tag) -> bool:
    view = _data_view(node)
    return str(view.get("p", "")).endswith("g") or bool(node.find(class_="tgme_widget_message_grouped_wrap"))


def _channel_id(node: Tag) -> int | None:
    value = _data_view(node).get("c")
    return abs(value) if isinstance(value, int) and value else None


def _data_view(node: Tag) -> dict[str, Any]:
    """``data-view`` is base64 JSON: {"c": -channel_id, "p": "237g", ...}."""
    raw = str(node.get("data-view") or "")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def parse_count(value: str | None) -> int | None:
    """``"1.2K"`` -> 1200, ``"3.1M"`` -> 3100000, ``"991"`` -> 991; None if not a count."""
    match = NUMBER.match(value or "")
    if not match:
        return None
    try:
        return int(Decimal(match[1].replace(",", ".")) * SUFFIXES[match[2].upper()])
    except InvalidOperation:
        return None


def parse_duration(value: str) -> int | None:
    """``"0:19"`` -> 19, ``"1:02:03"`` -> 3723 seconds."""
    try:
        seconds = 0
        for part in value.strip().split(":"):
            seconds = seconds * 60 + int(part)
    except ValueError:
        return None
    return seconds


def _post_id(data_post: Any) -> int | None:
    return _int(str(data_post or "").rstrip("/").rsplit("/", 1)[-1])


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _classes(node: Tag) -> list[str]:
    value = node.get("class")
    return [value] if isinstance(value, str) else list(value or [])


def _text(node: Tag | None, class_name: str) -> str | None:
    found = node.find(class_=class_name) if node is not None else None
    return _clean(found.get_text()) if found is not None else None


def _clean(value: str) -> str | None:
    return " ".join(value.split()) or None


def _href(node: Tag) -> str | None:
    href = node.get("href")
    return unescape_href(str(href)) if href else None


def _meta(soup: BeautifulSoup, prop: str) -> str | None:
    node = soup.find("meta", attrs={"property": prop})
    return _clean(str(node.get("content", ""))) if node else None
