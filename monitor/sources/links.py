"""Finding, splitting and normalising the links of a post."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from storage.models import Link

# A URL runs until white space, quotes, angle brackets or guillemets.
URL_IN_TEXT = re.compile(r"""(?:https?://|www\.)[^\s<>"'«»“”„\u00a0]+""", re.I)
SCHEME_INSIDE = re.compile(r"(?<=.)https?://", re.I)
TRAILING = ".,:;!?'\"»…)]}>。，、；：！？"
BRACKETS = {")": "(", "]": "[", "}": "{", ">": "<"}
DEFAULT_PORTS = {"http": 80, "https": 443}
TELEGRAM_HOSTS = ("t.me", "telegram.me", "www.t.me")
TELEGRAM_POST_PATH = re.compile(r"^/(?:s/)?([A-Za-z][A-Za-z0-9_]{3,31})/(\d+)/?$")
# Hosts whose URLs legitimately embed another URL: not split.
EMBEDDING_HOSTS = ("web.archive.org", "archive.org", "archive.ph", "archive.today")


def find_urls(text: str) -> list[str]:
    """URLs in plain text: glued ones split, trailing punctuation and stray brackets dropped."""
    found: list[str] = []
    for match in URL_IN_TEXT.finditer(text):
        for piece in split_glued(match.group(0)):
            piece = strip_trailing(piece)
            if piece and _has_host(piece):
                found.append(piece)
    return found


def split_glued(url: str) -> list[str]:
    """``https://a/x/https://b/y`` is two URLs, unless the host embeds URLs by design."""
    try:
        host = (urlsplit(url if "://" in url else "http://" + url).hostname or "").lower()
    except ValueError:  # an unbalanced "[": not a URL we can split safely
        return [url]
    if host.endswith(EMBEDDING_HOSTS):
        return [url]
    starts = [0] + [m.start() for m in SCHEME_INSIDE.finditer(url)]
    return [url[a:b] for a, b in zip(starts, starts[1:] + [len(url)], strict=True)]


def strip_trailing(url: str) -> str:
    """Drop trailing punctuation; a closing bracket stays only when it closes one in the URL."""
    while url and url[-1] in TRAILING:
        last = url[-1]
        opener = BRACKETS.get(last)
        if opener and url.count(opener) >= url.count(last):
            break
        url = url[:-1]
    return url


def unescape_href(href: str) -> str:
    """Undo the double escaping of hidden links (``&amp;amp;``) that t.me sometimes emits."""
    while "&amp;" in href:
        href = href.replace("&amp;", "&")
    return href


def normalise_url(url: str) -> str | None:
    """Lower-case scheme and host, no default port, no fragment, no ``utm_*``; None if unusable."""
    if url.lower().startswith("www."):
        url = "http://" + url
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in ("http", "https") or not host:
        return None
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not pair.lower().startswith("utm_")
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def _has_host(url: str) -> bool:
    normalised = normalise_url(url)
    return normalised is not None and "." in (urlsplit(normalised).hostname or "")


def is_autolink(label: str, href: str) -> bool:
    """Is a link's visible text the URL itself (an auto-link), rather than a hidden link?"""
    def bare(url: str) -> str:
        return re.sub(r"^(https?://)?(www\.)?", "", url, flags=re.I).rstrip("/").lower()

    if not label:
        return False
    if bare(label) == bare(href):
        return True
    # Telegram shortens long URLs for display: "https://mid.ru/ru/foreign_policy/new…"
    truncated = label.endswith(("…", "..."))
    return truncated and bare(href).startswith(bare(label.rstrip(".…")))


def make_links(candidates: Iterable[tuple[str, str]]) -> tuple[Link, ...]:
    """``(original, kind)`` pairs to deduplicated :class:`Link` records, in first-seen order."""
    links: dict[tuple[str, str], Link] = {}
    for original, kind in candidates:
        url = normalise_url(original)
        if url is None or (url, kind) in links:
            continue
        host = urlsplit(url).hostname
        ref_channel, ref_post_id = post_reference(url)
        links[(url, kind)] = Link(url, original, kind, host, ref_channel, ref_post_id)
    return tuple(links.values())


def post_reference(url: str) -> tuple[str | None, int | None]:
    """``https://t.me/MFARussia/22957`` names post 22957 of MFARussia; other URLs name none."""
    parts = urlsplit(url)
    if parts.hostname not in TELEGRAM_HOSTS:
        return None, None
    match = TELEGRAM_POST_PATH.match(parts.path)
    return (match[1], int(match[2])) if match else (None, None)
