"""Release pages to clean records: challenge detection, and mid.ru, BelTA and generic extractors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment

from storage.models import Attachment, format_timestamp

# Anti-bot walls answer 200 with one of these instead of the page.
CHALLENGE_MARKERS = (
    ('window["bobcmn"]', "F5/Shape challenge"),
    ("/TSPD/", "F5/Shape challenge"),
    ("Data processing... Please, wait.", "F5/Shape challenge"),
    ("Please enable JavaScript", "JavaScript wall"),
    ("cf-browser-verification", "Cloudflare challenge"),
    ("challenge-platform", "Cloudflare challenge"),
    ("Just a moment...", "Cloudflare challenge"),
    ("Attention Required! | Cloudflare", "Cloudflare block"),
    ("DDoS-Guard", "DDoS-Guard wall"),
)
MOSCOW = timezone(timedelta(hours=3))  # mid.ru and BelTA publish in UTC+3 (no DST since 2014)
MONTHS = {
    **{m: i for i, m in enumerate(("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                                   "сентября", "октября", "ноября", "декабря"), 1)},
    **{m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                   "september", "october", "november", "december"), 1)},
}
NUMERIC_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\D+(\d{1,2}):(\d{2}))?")
WORDED_DATE = re.compile(r"(\d{1,2})\s+([^\W\d_]+),?\s+(\d{4})(?:\D+(\d{1,2}):(\d{2}))?")
ATTACHMENT = re.compile(r"/upload/.+\.(pdf|docx?|rtf|odt|xlsx?)$", re.I)
BELTA_END = "Follow us on:"


@dataclass(frozen=True, slots=True)
class Extracted:
    """What an extractor found on a page."""

    title: str | None = None
    published_at: str | None = None
    lang: str | None = None
    text: str | None = None
    doc_number: str | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


def challenge_marker(html: str) -> str | None:
    """The kind of anti-bot wall this page is, or None for a real page."""
    head = html[:20000]
    for marker, kind in CHALLENGE_MARKERS:
        if marker in head:
            return kind
    return None


def extract(name: str, html: str, url: str) -> Extracted:
    """Run the extractor called ``name`` (midru, belta or generic)."""
    return EXTRACTORS.get(name, extract_generic)(html, url)


def extract_midru(html: str, url: str) -> Extracted:
    """mid.ru: the current layout (``div.photo-content``) and the old Liferay one."""
    soup = BeautifulSoup(html, "lxml")
    current = soup.find(class_="photo-content")
    if current is not None:
        title = _text_of(current.find(class_="photo-content__title"))
        date = _text_of(current.find(class_="photo-content__date"))
        number = _text_of(current.find(class_="article-line__note"))
        body = current.find("div", class_="article-content")
    else:  # www.mid.ru/.../asset_publisher/.../content/id/N
        title = _text_of(soup.find("h1", class_="title") or soup.find("h1"))
        date = _text_of(soup.find(class_="date"))
        number = None
        body = soup.find(class_="journal-content-article")
    if body is not None:
        _drop_table_of_contents(body)
    return Extracted(
        title=title or _page_title(soup),
        published_at=parse_local_date(date or "", MOSCOW),
        lang=_lang(soup, url),
        text=_body_text(body),
        doc_number=number,
        attachments=_attachments(body, url),
    )


def extract_belta(html: str, url: str) -> Extracted:
    """eng.belta.by: the article body up to "Follow us on:", without tags and related news."""
    soup = BeautifulSoup(html, "lxml")
    meta = soup.find("meta", attrs={"name": "mediator_published_time"})
    published = _iso_date(str(meta.get("content", ""))) if meta else None
    if published is None:
        published = parse_local_date(_text_of(soup.find(class_="date_full")) or "", MOSCOW)
    body = soup.find(class_="js-mediator-article")
    if body is not None:
        for block in body.find_all(class_=re.compile(r"tags|other|related")):
            block.decompose()
    text = _body_text(body)
    if text and BELTA_END in text:
        text = text[: text.index(BELTA_END)].rstrip() or None
    return Extracted(
        title=_text_of(soup.find("h1")) or _page_title(soup),
        published_at=published,
        lang=_lang(soup, url),
        text=text,
        attachments=_attachments(body, url),
    )


def extract_generic(html: str, url: str) -> Extracted:
    """Any other site: trafilatura's main-text extraction."""
    import trafilatura  # imported late: it is large, and only other sites need it

    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    soup = BeautifulSoup(html[:20000], "lxml")
    if document is None:
        return Extracted(title=_page_title(soup), lang=_lang(soup, url))
    values = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    return Extracted(
        title=values.get("title") or _page_title(soup),
        published_at=_iso_date(values.get("date") or ""),
        lang=values.get("language") or _lang(soup, url),
        text=(values.get("text") or "").strip() or None,
    )


EXTRACTORS: dict[str, Callable[[str, str], Extracted]] = {
    "midru": extract_midru,
    "belta": extract_belta,
    "generic": extract_generic,
}


def parse_local_date(text: str, zone: timezone) -> str | None:
    """``14.05.2024 16:10``, ``6 November 2024 14:30``, ``14 мая 2024`` in ``zone``, as UTC."""
    match = NUMERIC_DATE.search(text)
    if match:
        day, month, year = int(match[1]), int(match[2]), int(match[3])
    else:
        match = WORDED_DATE.search(text)
        if not match or match[2].lower() not in MONTHS:
            return None
        day, month, year = int(match[1]), MONTHS[match[2].lower()], int(match[3])
    hour, minute = (int(match[4]), int(match[5])) if match[4] else (0, 0)
    try:
        moment = datetime(year, month, day, hour, minute, tzinfo=zone)
    except ValueError:
        return None
    return format_timestamp(moment) if match[4] else moment.date().isoformat()


def _iso_date(text: str) -> str | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if len(text.strip()) == 10:
        return moment.date().isoformat()
    return format_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=MOSCOW))


def _drop_table_of_contents(body: Tag) -> None:
    """Briefings open with a list of in-page links; it is navigation, not text."""
    for listing in body.find_all(["ul", "ol"]):
        anchors = listing.find_all("a", href=True)
        if anchors and all(str(a["href"]).startswith("#") for a in anchors):
            heading = listing.find_previous_sibling()
            if heading is not None and "content" in heading.get_text().lower():
                heading.decompose()
            listing.decompose()


def _body_text(body: Tag | None) -> str | None:
    if body is None:
        return None
    for junk in body.find_all(["script", "style", "noscript", "iframe"]):
        junk.decompose()
    blocks = body.find_all(["p", "h2", "h3", "h4", "h5", "li", "blockquote"]) or [body]
    lines = [" ".join(plain_text(block).split()) for block in blocks if not block.find_parent(["li"])]
    return "\n\n".join(line for line in lines if line) or None


def plain_text(node: Tag) -> str:
    """Text with ``<br>`` as newlines; no markup, no comments."""
    parts: list[str] = []
    for element in node.descendants:
        if isinstance(element, Comment):
            continue
        if isinstance(element, NavigableString):
            parts.append(str(element))
        elif isinstance(element, Tag) and element.name == "br":
            parts.append("\n")
    return "".join(parts)


def _attachments(body: Tag | None, url: str) -> tuple[Attachment, ...]:
    if body is None:
        return ()
    found: dict[str, Attachment] = {}
    for anchor in body.find_all("a", href=True):
        target = urljoin(url, str(anchor["href"]))
        if ATTACHMENT.search(urlsplit(target).path) and target not in found:
            found[target] = Attachment(target, " ".join(anchor.get_text().split()) or None)
    return tuple(found.values())


def _lang(soup: BeautifulSoup, url: str) -> str | None:
    html = soup.find("html")
    lang = str(html.get("lang") or "") if isinstance(html, Tag) else ""
    if lang:
        return lang.split("-")[0].lower()
    segment = urlsplit(url).path.strip("/").split("/")[0]
    return segment if len(segment) == 2 and segment.isalpha() else None


def _page_title(soup: BeautifulSoup) -> str | None:
    return _text_of(soup.find("title"))


def _text_of(node: Tag | None) -> str | None:
    if node is None:
        return None
    return " ".join(node.get_text().replace("\xa0", " ").split()) or None
