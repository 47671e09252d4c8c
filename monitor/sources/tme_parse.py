"""Parsing t.me web-preview pages with lxml: pure functions, no I/O.

t.me's markup drifts, so every lookup here may come back empty: a missing element is
a missing field, never a crash. Each message's subtree is walked once into an index
of class name -> elements (document order), and fields are read from that index;
lxml elements never leave this module.
"""

from __future__ import annotations

import base64
import binascii
import html as htmllib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

import lxml.etree
import structlog

from monitor.sources.links import find_urls, is_autolink, make_links, unescape_href
from monitor.sources.tme_values import MAX_INTEGER, decode_page, parse_count, parse_duration, parse_id
from storage.models import UNVIEWABLE, ChannelInfo, Link, MediaSource, Post, format_timestamp

log = structlog.get_logger(__name__)

Element: TypeAlias = Any  # lxml.html.HtmlElement; lxml ships no type hints
Index: TypeAlias = dict[str, list[Element]]

__all__ = ["ParsedPage", "inner_html", "parse_count", "parse_document", "parse_duration", "parse_message",
           "plain_text"]

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
BACKGROUND_IMAGE = re.compile(r"background-image\s*:\s*url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
QUOTING_CLASSES = frozenset({"tgme_widget_message_reply", "tgme_widget_message_link_preview"})
DOCUMENT_ICON_CLASSES = frozenset({"tgme_widget_message_document_icon", "accent_bg"})
DURATION_CLASSES = ("message_video_duration", "tgme_widget_message_roundvideo_duration",
                    "tgme_widget_message_voice_duration")
def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


MESSAGES = lxml.etree.XPath(f"//div[@data-post][{_has_class('tgme_widget_message')}]")
# Single-post pages of about 2018 carry no data-post: the id is only in the date's link.
MESSAGES_WITHOUT_ID = lxml.etree.XPath(f"//div[not(@data-post)][{_has_class('tgme_widget_message')}]")
DATE_LINKS = lxml.etree.XPath(f".//a[{_has_class('tgme_widget_message_date')}]/@href")
POST_LINK_ID = re.compile(r"/[A-Za-z][A-Za-z0-9_]{3,31}/(\d+)/?(?:[?#].*)?$")
SERVICE_LABEL = "service message"  # an old single-post page's stand-in for a service message
PAGE_CLASSES = ("tgme_channel_info", "tme_messages_more", "tgme_channel_history", "tme_no_messages_found",
                "tgme_widget_message_error")
# A substring test in C finds the few page-level elements; _index_of keeps exact class names.
PAGE_PARTS = lxml.etree.XPath("//*[" + " or ".join(f"contains(@class, '{c}')" for c in PAGE_CLASSES) + "]")
# Plain lxml elements: lxml.html's element classes cost a lookup per node. huge_tree lifts
# libxml2's nesting limit of 256, past which it silently drops the rest of the page.
PARSER = lxml.etree.HTMLParser(remove_comments=False, recover=True, huge_tree=True)
# Every message carries data-post once: the page's own count of what it holds.
DATA_POST = re.compile(r'data-post="([^"]*)"')
BUTTON_CLASS = "tgme_widget_message_inline_button"
VERIFIED_MARKS = frozenset({"verified-icon", "verified_icon"})


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What a channel page says: the channel, its posts (oldest first), and the cursors."""

    channel: ChannelInfo
    posts: tuple[Post, ...]
    before: int | None = None
    after: int | None = None
    has_history: bool = True
    parse_errors: int = 0
    embed: str | None = None  # single-post pages: "deleted" if Telegram says "Post not found"
    failures: tuple[tuple[int, str], ...] = ()  # (post id, reason) of posts that did not parse
    unread: int = 0  # messages the page holds (by its data-post ids) that the parser never reached


def parse_document(html: str | bytes, username: str) -> ParsedPage:
    """Parse a channel page, a fragment of one, or a single-post embed page.

    Bytes are decoded by :func:`decode_page` (which may raise ``PageDecodeError``). A post
    that fails to parse is left out and named in ``failures``: it never becomes an empty
    record. ``unread`` counts messages the markup holds but the parser did not reach.
    """
    text = decode_page(html) if isinstance(html, bytes) else html
    doc = _document(text)
    if doc is None:
        return ParsedPage(ChannelInfo(username), (), has_history=False)
    page = _index_of(PAGE_PARTS(doc))
    posts: dict[int, Post] = {}
    failures: dict[int, str] = {}
    telegram_id = None
    errors = 0
    nodes = MESSAGES(doc) or MESSAGES_WITHOUT_ID(doc)
    for node in nodes:
        post_id = _post_id(node.get("data-post")) if node.get("data-post") is not None else _date_link_id(node)
        if post_id is None:
            log.warning("post_without_id", channel=username, data_post=str(node.get("data-post"))[:100])
            errors += 1
            continue
        try:
            posts[post_id] = parse_message(node, post_id)
        except Exception as exc:  # defensive: one odd post must not lose the page
            log.warning("post_parse_failed", channel=username, post_id=post_id, error=repr(exc))
            failures[post_id] = f"{type(exc).__name__}: {exc}"
            errors += 1
        telegram_id = telegram_id or _channel_id(node)
    error = _first(page, "tgme_widget_message_error")
    reached = {str(node.get("data-post")) for node in nodes}
    return ParsedPage(
        channel=_channel_info(doc, page, username, telegram_id),
        posts=tuple(posts[k] for k in sorted(posts)),
        before=_more(page, "data-before"),
        after=_more(page, "data-after"),
        has_history=bool(posts or failures or page.get("tgme_channel_history") or page.get("tme_no_messages_found")),
        parse_errors=errors,
        embed="deleted" if error is not None and "not found" in _string(error).lower() else None,
        failures=tuple(sorted(failures.items())),
        unread=len(set(DATA_POST.findall(text)) - reached),
    )


def parse_message(node: Element, post_id: int) -> Post:
    """One ``tgme_widget_message``; every element is optional."""
    idx = _index(node)
    bubble = _first(idx, "tgme_widget_message_bubble")
    text_node = _message_text_node(idx)
    text = plain_text(text_node).strip() if text_node is not None else None
    preview = _link_preview(idx)
    forward = _first(idx, "tgme_widget_message_forwarded_from_name")
    reply_to, reply_url = _reply(idx, str(node.get("data-post") or ""))
    elements = _media_elements(idx, bubble)
    media = tuple(_media_item(kind, el, idx) for kind, el in elements)
    label = (_text(idx, "message_media_not_supported_label") or "").lower()
    service = "service_message" in _classes(node) or (not text and not media and label == SERVICE_LABEL)
    if not text and not media and label and not service:
        media = ({"type": UNVIEWABLE},)  # the preview cannot show it: a mark, never empty content
    grouped = _is_grouped(node, idx) or any("post_id" in item for item in media)
    buttons = _buttons(idx)
    return Post(
        post_id=post_id,
        date=_date(node, idx),
        text=text or None,
        html=inner_html(text_node).strip() if text_node is not None else None,
        views=parse_count(_text(idx, "tgme_widget_message_views")),
        author=_text(idx, "tgme_widget_message_from_author"),
        edited=_is_edited(idx),
        forwarded_from=_clean(_string(forward)) if forward is not None else None,
        forwarded_from_url=_href(forward) if forward is not None else None,
        reply_to=reply_to,
        reply_to_url=reply_url,
        grouped_id=post_id if grouped else None,
        media=media,
        link_preview=preview,
        service=service,
        links=_links(text_node, text, preview, buttons, service),
        buttons=buttons,
        media_sources=tuple(source for index, (kind, el) in enumerate(elements) for source in _sources(index, kind, el)),
    )


def _sources(index: int, kind: str, element: Element) -> list[MediaSource]:
    """The download links of one media element: its picture (a photo, or a video's thumbnail)
    from a ``background-image``, and a video's own file from ``<video src>``."""
    found = []
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue
        match = BACKGROUND_IMAGE.search(node.get("style") or "")
        if match and match.group(1).startswith(("https://", "http://")):
            found.append(MediaSource(index, "photo" if kind == "photo" else "thumbnail", match.group(1)))
        if node.tag == "video" and (node.get("src") or "").startswith(("https://", "http://")):
            found.append(MediaSource(index, "video", node.get("src") or ""))
    unique = {(source.role, source.url): source for source in found}
    return list(unique.values())[:3]


def plain_text(node: Element) -> str:
    """Text with ``<br>`` as newlines and emoji kept; no markup, no comments."""
    parts: list[str] = []
    _collect(node, parts)
    return "".join(parts)


def _collect(node: Element, parts: list[str]) -> None:
    if node.text and isinstance(node.tag, str):
        parts.append(node.text)
    for child in node:
        if child.tag == "br":
            parts.append("\n")
        elif isinstance(child.tag, str):
            _collect(child, parts)
        if child.tail:
            parts.append(child.tail)


def inner_html(node: Element) -> str:
    """The markup inside ``node``, as lxml serialises HTML."""
    head = htmllib.escape(node.text, quote=False) if node.text else ""
    return head + "".join(
        lxml.etree.tostring(child, method="html", encoding="unicode", with_tail=True) for child in node
    )


def _document(html: str | bytes) -> Element | None:
    if not (html.strip() if isinstance(html, str) else html.strip()):
        return None
    try:
        return lxml.etree.fromstring(html, PARSER)
    except ValueError:  # a str with an XML encoding declaration: parse its bytes
        data = html.encode("utf-8") if isinstance(html, str) else html
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError):
        return None
    try:
        return lxml.etree.fromstring(data, PARSER)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError, ValueError):
        return None


def _index(root: Element) -> Index:
    """Every element below ``root`` by each of its classes, in document order."""
    return _index_of(root.iter(lxml.etree.Element))


def _index_of(elements: Iterable[Element]) -> Index:
    idx: Index = defaultdict(list)
    for element in elements:
        value = element.get("class")
        if value:
            for name in value.split():
                idx[name].append(element)
    return idx


def _string(node: Element) -> str:
    """Text content below ``node`` (comments excluded)."""
    return "".join(node.itertext(lxml.etree.Element))


def _channel_info(doc: Element, page: Index, username: str, telegram_id: int | None) -> ChannelInfo:
    info = _first(page, "tgme_channel_info")
    within = _index(info) if info is not None else {}
    description = _first(within, "tgme_channel_info_description")
    counters: dict[str, int] = {}
    for counter in page.get("tgme_channel_info_counter", []):
        sub = _index(counter)
        kind, value = _text(sub, "counter_type"), parse_count(_text(sub, "counter_value"))
        if kind and value is not None:
            counters[kind if kind.endswith("s") else kind + "s"] = value
    handle = _text(within, "tgme_channel_info_header_username")
    return ChannelInfo(
        username=(handle or "").lstrip("@") or username,
        telegram_id=telegram_id,
        title=_title(within) or _meta(doc, "og:title"),
        description=(plain_text(description).strip() if description is not None else None) or _meta(doc, "og:description"),
        subscribers=counters.get("subscribers", counters.get("members")),
        counters=counters,
    )


def _title(within: Index) -> str | None:
    """The channel's title without the verified mark that 2019 pages put inside it."""
    node = _first(within, "tgme_channel_info_header_title")
    return _clean(_text_skipping(node, VERIFIED_MARKS)) if node is not None else None


def _text_skipping(node: Element, skipped: frozenset[str]) -> str:
    parts = [node.text or ""]
    for child in node:
        if isinstance(child.tag, str) and not skipped.intersection(_classes(child)):
            parts.append(_text_skipping(child, skipped))
        parts.append(child.tail or "")
    return "".join(parts)


def _message_text_node(idx: Index) -> Element | None:
    """The post's own text (not a reply quote); albums nest it twice."""
    candidates = [el for el in idx.get("js-message_text", []) if el.tag == "div"]
    if not candidates:
        return None
    node = candidates[0]
    while True:
        children = list(node)
        if (len(children) == 1 and not (node.text or "").strip() and not (children[0].tail or "").strip()
                and "js-message_text" in _classes(children[0])):
            node = children[0]
        else:
            return node


def _links(text_node: Element | None, text: str | None, preview: dict[str, Any] | None,
           buttons: tuple[dict[str, str], ...], service: bool) -> tuple[Link, ...]:
    candidates: list[tuple[str, str]] = []
    shortened: set[str] = set()  # what the text shows of auto-links Telegram cut short ("…/news/1984…")
    for position, anchor in enumerate(text_node.iter("a") if text_node is not None else ()):
        href = unescape_href((anchor.get("href") or "").strip())
        label = _string(anchor).strip()
        if not href.lower().startswith(("http://", "https://")) or "tgme_widget_message_author_name" in _classes(anchor):
            continue  # hashtags (?q=%23tag), in-page links, "X pinned ..." author names
        if service and position == 0 and text_node is not None and not (text_node.text or "").strip():
            continue  # old pages: the actor of "X updated group photo" without its class
        if label.startswith("@") and _hostname(href) in ("t.me", "telegram.me"):
            candidates.append((href, "mention"))
        elif is_autolink(label, href):
            candidates.extend((url, "text") for url in find_urls(href) or [href])
            if label.endswith(("…", "...")):
                shortened.update(find_urls(label.rstrip(".…")))
        else:
            candidates.append((href, "hidden"))
    candidates.extend((url, "text") for url in find_urls(text or "") if url not in shortened)
    if preview and preview.get("url"):
        candidates.append((preview["url"], "preview"))
    candidates.extend((button["url"], "button") for button in buttons)
    return make_links(candidates)


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # "http://[oops": not a link this post can have
        return None


def _buttons(idx: Index) -> tuple[dict[str, str], ...]:
    """Inline keyboard URL buttons: label and URL, in order."""
    found = []
    for anchor in idx.get(BUTTON_CLASS, []):
        url = unescape_href((anchor.get("href") or "").strip())
        if url.lower().startswith(("http://", "https://")):
            found.append({"label": _clean(_string(anchor)) or "", "url": url})
    return tuple(found)


def _link_preview(idx: Index) -> dict[str, Any] | None:
    node = next((el for el in idx.get("tgme_widget_message_link_preview", []) if el.tag == "a"), None)
    if node is None:
        return None
    sub = _index(node)
    fields = {
        "url": unescape_href(node.get("href") or "") or None,
        "site": _text(sub, "link_preview_site_name"),
        "title": _text(sub, "link_preview_title"),
        "description": _text(sub, "link_preview_description"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _reply(idx: Index, data_post: str) -> tuple[int | None, str | None]:
    node = next((el for el in idx.get("tgme_widget_message_reply", []) if el.tag == "a"), None)
    url = _href(node) if node is not None else None
    if not url:
        return None, None
    try:
        path = urlsplit(url).path.strip("/").split("/")
    except ValueError:
        return None, None
    if len(path) >= 2 and path[-2].lower() == data_post.split("/")[0].lower():
        return _int(path[-1]), url
    return None, url


def _media_elements(idx: Index, bubble: Element | None) -> list[tuple[str, Element]]:
    found = [(kind, el) for cls, kind in MEDIA_CLASSES.items() for el in idx.get(cls, [])]
    quoted = [el for cls in QUOTING_CLASSES for el in idx.get(cls, [])]
    kept = [(kind, el) for kind, el in found if not any(_inside(el, q) for q in quoted)]
    if len({kind for kind, _ in kept}) < 2 or bubble is None:
        return kept  # one class list: already in document order
    order = {el: i for i, el in enumerate(bubble.iter())}
    return sorted(kept, key=lambda pair: order.get(pair[1], 0))


def _inside(element: Element, container: Element) -> bool:
    return any(ancestor is container for ancestor in element.iterancestors())


def _media_item(kind: str, element: Element, message: Index) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind}
    href = _href(element) or ""
    sub = _index(element)
    if "?single" in href or "grouped_media_wrap" in _classes(element):
        item["post_id"] = _post_id(urlsplit(href).path)
    if kind in ("video", "round_video", "voice"):
        duration = next((el for cls in DURATION_CLASSES for el in sub.get(cls, [])), None)
        item["duration"] = parse_duration(_string(duration)) if duration is not None else None
        label = _text(sub, "message_media_not_supported_label") or ""
        if "not_supported" in _classes(element) or "too big" in label.lower():
            item["too_big"] = True
    elif kind == "document":
        icon = _first(sub, "tgme_widget_message_document_icon")
        kinds = [c for c in (_classes(icon) if icon is not None else []) if c not in DOCUMENT_ICON_CLASSES]
        item.update(title=_text(sub, "tgme_widget_message_document_title"),
                    extra=_text(sub, "tgme_widget_message_document_extra"), kind=kinds[0] if kinds else None)
    elif kind == "poll":
        item.update(_poll(sub, message))
    elif kind == "location":
        item.update(_location(href))
    return {k: v for k, v in item.items() if v is not None}


def _poll(sub: Index, message: Index) -> dict[str, Any]:
    question = _first(sub, "tgme_widget_message_poll_question")
    options = []
    for option in sub.get("tgme_widget_message_poll_option", []):
        parts = _index(option)
        percent = _text(parts, "tgme_widget_message_poll_option_percent") or ""
        entry = {"text": _text(parts, "tgme_widget_message_poll_option_text"),
                 "percent": parse_count(percent.rstrip("%"))}
        options.append({k: v for k, v in entry.items() if v is not None})
    return {
        "question": plain_text(question).strip() if question is not None else None,
        "poll_type": _text(sub, "tgme_widget_message_poll_type"),
        "options": options,
        "voters": parse_count(_text(message, "tgme_widget_message_voters")),
    }


def _location(href: str) -> dict[str, Any]:
    values = parse_qs(urlsplit(href).query).get("q", [""])[0].split(",")
    try:
        return {"latitude": float(values[0]), "longitude": float(values[1])}
    except (ValueError, IndexError):
        return {}


def _date(node: Element, idx: Index) -> str | None:
    scopes: Iterable[Element] = idx.get("tgme_widget_message_date") or [node]
    for scope in scopes:
        for time in scope.iter("time"):
            if time.get("datetime"):
                return _timestamp(time.get("datetime") or "")
    return None


def _timestamp(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return format_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _is_edited(idx: Index) -> bool:
    meta = _first(idx, "tgme_widget_message_meta")
    return meta is not None and "edited" in _string(meta).lower()


def _is_grouped(node: Element, idx: Index) -> bool:
    return str(_data_view(node).get("p", "")).endswith("g") or bool(idx.get("tgme_widget_message_grouped_wrap"))


def _channel_id(node: Element) -> int | None:
    value = _data_view(node).get("c")
    return abs(value) if isinstance(value, int) and value and abs(value) <= MAX_INTEGER else None


def _data_view(node: Element) -> dict[str, Any]:
    """``data-view`` is base64 JSON: {"c": -channel_id, "p": "237g", ...}."""
    raw = node.get("data-view") or ""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _more(page: Index, attribute: str) -> int | None:
    for anchor in page.get("tme_messages_more", []):
        if anchor.get(attribute):
            return _int(anchor.get(attribute))
    return None


def _date_link_id(node: Element) -> int | None:
    """The post id of the date's link (``https://t.me/K1inUSA/3``), for markup without data-post."""
    for href in DATE_LINKS(node):
        found = POST_LINK_ID.search(str(href))
        if found:
            return parse_id(found[1])
    return None


def _post_id(data_post: Any) -> int | None:
    return parse_id(str(data_post or "").rstrip("/").rsplit("/", 1)[-1])


_int = parse_id


def _classes(node: Element) -> list[str]:
    return (node.get("class") or "").split()


def _first(idx: Index, class_name: str) -> Element | None:
    found = idx.get(class_name)
    return found[0] if found else None


def _text(idx: Index, class_name: str) -> str | None:
    found = _first(idx, class_name)
    return _clean(_string(found)) if found is not None else None


def _clean(value: str) -> str | None:
    return " ".join(value.split()) or None


def _href(node: Element) -> str | None:
    href = node.get("href")
    return unescape_href(href) if href else None


def _meta(doc: Element, prop: str) -> str | None:
    head = doc.find("head")
    for node in (head if head is not None else doc).iter("meta"):
        if node.get("property") == prop:
            return _clean(node.get("content") or "")
    return None
