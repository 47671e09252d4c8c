"""Release pages to clean records: challenge detection, and mid.ru, BelTA and generic extractors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, SoupStrainer, Tag
from bs4.element import Comment

from storage.models import Attachment, format_timestamp

# Anti-bot walls and WAF block pages answer 200 with one of these instead of the page
# (matched case-insensitively in the first WALL_SCAN characters).
CHALLENGE_MARKERS = (
    ('window["bobcmn"]', "F5/Shape challenge"),
    ("/TSPD/", "F5/Shape challenge"),
    ("Data processing... Please, wait.", "F5/Shape challenge"),
    ("The requested URL was rejected. Please consult with your administrator.", "F5 block page (Request Rejected)"),
    ("<title>Request Rejected</title>", "F5 block page (Request Rejected)"),
    ("cf-browser-verification", "Cloudflare challenge"),
    ("challenge-platform", "Cloudflare challenge"),
    ("_cf_chl_opt", "Cloudflare challenge"),
    ("Just a moment...", "Cloudflare challenge"),
    ("Attention Required! | Cloudflare", "Cloudflare block"),
    ("DDoS-Guard", "DDoS-Guard wall"),
    ("__qrator", "Qrator wall"),
    ("qrator.net", "Qrator wall"),
    ("variti", "Variti wall"),
    ("<title>Access denied", "Access denied page"),
    ("You don't have permission to access", "Access denied page"),
    ("Please enable JavaScript", "JavaScript wall"),
)
WALL_SCAN = 20000
MOSCOW = timezone(timedelta(hours=3))  # mid.ru and BelTA publish in UTC+3 (no DST since 2014)
MONTHS = {
    **{m: i for i, m in enumerate(("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                                   "сентября", "октября", "ноября", "декабря"), 1)},
    **{m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                   "september", "october", "november", "december"), 1)},
}
# "14.05.2024 16:10", and the old site's two-digit years: "14.05.16 16:10".
NUMERIC_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?!\d)(?:\D+(\d{1,2}):(\d{2}))?")
WORDED_DATE = re.compile(r"(\d{1,2})\s+([^\W\d_]+),?\s+(\d{4})(?:\D+(\d{1,2}):(\d{2}))?")
ATTACHMENT = re.compile(r"/upload/.+\.(pdf|docx?|rtf|odt|xlsx?)$", re.I)
BELTA_END = "Follow us on:"
DASHES = frozenset({"-", "–", "—"})
HEADING_CHARS = 200  # a first line longer than this is text, not a title
LANGUAGE_SAMPLE = 2000  # characters of text the language is told from
LANGUAGE_MIN_WORDS = 5
MINISTRY_NAMES = ("министерство иностранных дел российской федерации",
                  "the ministry of foreign affairs of the russian federation")
# Briefings list their contents first and end sections with a link back to it.
CONTENTS_HEADINGS = ("table of contents", "contents", "content", "содержание", "оглавление")
BACK_TO_CONTENTS = re.compile(r"^\s*(назад\s+)?к\s+оглавлению|^\s*back\s+to\s+(the\s+)?(table\s+of\s+)?contents",
                              re.I)
BELTA_LANGUAGES = {"eng": "en", "blr": "be", "deu": "de", "pol": "pl", "chn": "zh", "esp": "es", "fra": "fr",
                   "www": "ru", "": "ru"}
MINSK = timezone(timedelta(hours=3))
LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")  # as sites put it first in their paths: /ru/, /en/, /de/
MAX_TRANSLATIONS = 24  # language versions taken from one page: a page linking hundreds cannot flood the queue


@dataclass(frozen=True, slots=True)
class Extracted:
    """What an extractor found on a page."""

    title: str | None = None
    published_at: str | None = None
    lang: str | None = None
    text: str | None = None
    doc_number: str | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    # (language, absolute URL) of the page's other language versions, as the page itself links them
    translations: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def challenge_marker(html: str) -> str | None:
    """The kind of anti-bot wall this page is, or None for a real page."""
    head = html[:WALL_SCAN].lower()
    for marker, kind in CHALLENGE_MARKERS:
        if marker.lower() in head:
            return kind
    return None


def extract(name: str, html: str, url: str) -> Extracted:
    """Run the extractor called ``name`` (midru, belta or generic)."""
    return EXTRACTORS.get(name, extract_generic)(html, url)


def extract_midru(html: str, url: str) -> Extracted:
    """mid.ru in each of its layouts: current, older, announcement, and the old Liferay site.

    A layout that is not found yields no text, and the page falls back to the generic
    extractor (see :func:`extract_with_fallback`).
    """
    soup = BeautifulSoup(html, "lxml")
    title = date = number = None
    body: Tag | None = None
    if (current := soup.find(class_="photo-content")) is not None:
        title = _text_of(current.find(class_="photo-content__title"))
        date = _text_of(current.find(class_="photo-content__date"))
        number = _text_of(current.find(class_="article-line__note"))
        body = current.find("div", class_="article-content")
    elif (announcement := soup.find(class_="announcements")) is not None:
        title = _text_of(announcement.find(class_="announcement__title"))
        date = _text_of(announcement.find(class_=re.compile(r"announcement__date|announcement__status")))
        number = _text_of(announcement.find(class_="announcement__doc-num"))
        body = announcement.find(class_="announcement__text")
    elif (older := soup.select_one("div.text.article-content")) is not None:
        title = _article_heading(soup)
        status = soup.find(class_="article-status-line")
        date = _text_of(status) if status is not None else None
        note = soup.select_one(".article-note span.nowrap")
        number = _text_of(note) if note is not None else None
        body = older
    elif (liferay := soup.find(class_="journal-content-article")) is not None:  # www.mid.ru/.../content/id/N
        title = _text_of(soup.find("h1", class_="title")) or _article_heading(soup)
        date = _text_of(soup.find(class_="date"))
        body = liferay
    elif soup.find("table") is not None and soup.body is not None:  # the stop lists: a heading and a table
        title = _article_heading(soup)
        body = soup.body
    else:
        title = _article_heading(soup)
    if body is not None:
        _drop_table_of_contents(body)
        _tables_as_rows(soup, body)
    return Extracted(
        title=title or _page_title(soup),
        published_at=parse_local_date(date or "", MOSCOW),
        lang=_lang(soup, url),
        text=_body_text(body),
        doc_number=number,
        attachments=_attachments(body, url),
    )


def _article_heading(soup: BeautifulSoup) -> str | None:
    """The last ``h1`` that is not the ministry's name: the old site opens with that name, and
    stop-list pages with the country, before the page's own title."""
    headings = [_text_of(h) for h in soup.find_all("h1")]
    titles = [h for h in headings if h and h.lower() not in MINISTRY_NAMES]
    return titles[-1] if titles else None


def extract_belta(html: str, url: str) -> Extracted:
    """BelTA: the article body up to "Follow us on:", without tags and related news.

    The visible date is Minsk time; ``mediator_published_time`` has been seen giving the
    same clock time marked as UTC, so the visible date wins when the two disagree.
    """
    soup = BeautifulSoup(html, "lxml")
    meta = soup.find("meta", attrs={"name": "mediator_published_time"})
    claimed = _iso_date(str(meta.get("content", ""))) if meta else None
    shown = parse_local_date(_text_of(soup.find(class_="date_full")) or "", MINSK)
    body = soup.find(class_="js-mediator-article")
    if body is not None:
        for block in body.find_all(class_=re.compile(r"tags|other|related")):
            block.decompose()
    text = _body_text(body)
    if text and BELTA_END in text:
        text = text[: text.index(BELTA_END)].rstrip() or None
    return Extracted(
        title=_text_of(soup.find("h1")) or _page_title(soup),
        published_at=shown or claimed,
        lang=_lang(soup, url) or _belta_language(url),
        text=text,
        attachments=_attachments(body, url),
    )


def _belta_language(url: str) -> str | None:
    """BelTA's language editions are subdomains: eng.belta.by, deu.belta.by, belta.by (Russian)."""
    host = (urlsplit(url).hostname or "").lower()
    if not host.endswith("belta.by"):
        return None
    return BELTA_LANGUAGES.get(host[: -len("belta.by")].rstrip("."))


def extract_generic(html: str, url: str) -> Extracted:
    """Any other site: trafilatura's main-text extraction."""
    import trafilatura  # imported late: it is large, and only other sites need it

    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    soup = BeautifulSoup(html[:20000], "lxml")
    if document is None:
        return Extracted(title=_page_title(soup), lang=_lang(soup, url))
    values = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    lines = [line for line in (" ".join(line.split()) for line in (values.get("text") or "").split("\n")) if line]
    title = values.get("title") or _page_title(soup) or _first_heading(soup)
    if title is None and lines and _reads_as_heading(lines[0]):  # no <title>, no heading: the first line is one
        title = lines[0]
    published = _iso_date(values.get("date") or "")
    # trafilatura keeps the heading, and on some pages the date line, at the top of the text
    while lines and (lines[0] == title or (published is not None and _is_date_line(lines[0]))):
        lines.pop(0)
    text = "\n\n".join(lines)
    return Extracted(
        title=title,
        published_at=published,
        lang=values.get("language") or _lang(soup, url) or detect_language(text),
        text=text or None,
    )


def _first_heading(soup: BeautifulSoup) -> str | None:
    return next((text for heading in soup.find_all(["h1", "h2"]) if (text := _text_of(heading))), None)


def _reads_as_heading(line: str) -> bool:
    """A short line that does not end a sentence: how a title looks where the page marks none."""
    return len(line) <= HEADING_CHARS and not line.endswith((".", "!", "?", "…", ":", ";", ","))


def _is_date_line(line: str) -> bool:
    """A line that is only a date ("20 мая 2013", "14.05.2024 13:10"), as pages print it by the title."""
    return bool(re.fullmatch(r"\d{1,2}[\s.][^\W\d_]*[\s.]*\d{2,4}(?:[,\s]+\d{1,2}:\d{2})?|\d{1,2}\.\d{1,2}\.\d{2,4}"
                             r"(?:[,\s]+\d{1,2}:\d{2})?", line.strip()))


def detect_language(text: str) -> str | None:
    """The language of ``text`` (ISO 639-1), for pages that do not declare theirs; None for too
    little text to tell. py3langid's model, which trafilatura also uses."""
    sample = text[:LANGUAGE_SAMPLE]
    if len(sample.split()) < LANGUAGE_MIN_WORDS:
        return None
    import py3langid  # loads its model on first use

    return str(py3langid.classify(sample)[0])


EXTRACTORS: dict[str, Callable[[str, str], Extracted]] = {
    "midru": extract_midru,
    "belta": extract_belta,
    "generic": extract_generic,
}


def extract_with_fallback(name: str, html: str, url: str) -> tuple[str, Extracted]:
    """The site's extractor; where it finds no body, trafilatura's text with the site's other fields.

    Returns the extractor that produced the text and what was found (text may still be None).
    """
    extracted = extract(name, html, url)
    if not extracted.text and name != "generic" and (generic := extract_generic(html, url)).text:
        extracted = Extracted(  # the date stays the site's: a guessed one is worse than none
            title=extracted.title or generic.title,
            published_at=extracted.published_at,
            lang=extracted.lang or generic.lang,
            text=generic.text,
            doc_number=extracted.doc_number,
            attachments=extracted.attachments,
        )
        name = "generic"
    if extracted.text:
        extracted = replace(extracted, translations=translation_links(html, url))
    return name, extracted


def translation_links(html: str, url: str) -> tuple[tuple[str, str], ...]:
    """``(language, URL)`` of the other language versions the page names: ``<link rel=alternate
    hreflang>`` and ``<a hreflang>``, and links on its own site to the same path under another
    language prefix (a language switcher: ``/ru/news/1944000/`` → ``/de/news/1944000/``)."""
    own = urlsplit(url)
    own_language, own_rest = language_prefix(own.path)
    found: dict[str, str] = {}
    for node in BeautifulSoup(html, "lxml", parse_only=SoupStrainer(["a", "link"])).find_all(["a", "link"]):
        href = str(node.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        target = urljoin(url, href).split("#", 1)[0]
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https"):
            continue
        hreflang = str(node.get("hreflang") or "").strip().lower()
        language: str | None
        if hreflang:
            language = hreflang.split("-")[0]
            if node.name == "link" and "alternate" not in (node.get("rel") or []):
                continue
        else:
            language, rest = language_prefix(parts.path)
            if (language is None or own_language is None or rest != own_rest or parts.query != own.query
                    or _site_host(parts.hostname) != _site_host(own.hostname)):
                continue
        if (language and LANGUAGE_CODE.match(language) and language != own_language and target.rstrip("/") != url.rstrip("/")
                and language not in found):
            found[language] = target
    return tuple(sorted(found.items()))[:MAX_TRANSLATIONS]


def language_prefix(path: str) -> tuple[str | None, str]:
    """``("de", "news/1944000")`` for ``/de/news/1944000/``; ``(None, path)`` without a language segment."""
    segments = [segment for segment in path.split("/") if segment]
    if segments and LANGUAGE_CODE.match(segments[0]):
        return segments[0], "/".join(segments[1:])
    return None, "/".join(segments)


def _site_host(host: str | None) -> str:
    host = (host or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def parse_local_date(text: str, zone: timezone) -> str | None:
    """``14.05.2024 16:10``, ``6 November 2024 14:30``, ``14 мая 2024`` in ``zone``, as UTC."""
    match = NUMERIC_DATE.search(text)
    if match:
        day, month, year = int(match[1]), int(match[2]), int(match[3])
        year += 2000 if year < 100 else 0  # the old site's "14.05.16"
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
    """Briefings open with their contents as in-page links (a list, or paragraphs of links) under
    a heading ("Table of contents", "Содержание"), and end sections with "К оглавлению" /
    "Back to table of contents". All of that is navigation, not text."""
    blocks: dict[int, Tag] = {}  # the blocks that hold in-page links, each once
    for anchor in body.find_all("a", href=True):
        if BACK_TO_CONTENTS.match(anchor.get_text()):
            anchor.decompose()
        elif str(anchor["href"]).startswith("#"):
            block = anchor.find_parent(["ul", "ol", "p", "div"])
            if block is not None and block is not body:
                blocks.setdefault(id(block), block)
    for block in blocks.values():
        if block.decomposed:
            continue
        anchors = block.find_all("a", href=True)
        if not all(str(a["href"]).startswith("#") for a in anchors):
            continue
        label = " ".join(block.get_text().split())
        if block.name in ("ul", "ol") or "".join(label.split()) == "".join("".join(a.get_text().split())
                                                                            for a in anchors):
            heading = block.find_previous_sibling()
            if heading is not None and _is_contents_heading(heading.get_text()):
                heading.decompose()
            block.decompose()


def _tables_as_rows(soup: BeautifulSoup, body: Tag) -> None:
    """Each table of ``body`` becomes one paragraph a row, its cells in order: a stop list reads
    as one person a line ("42. Джон БАРРАССО (John Anthony Barrasso) – член Сената ..."), a
    heading row alone on its line. A list number the page shows (``<ol start="42">``) is kept."""
    for table in body.find_all("table"):
        if table.decomposed or table.find_parent("table") is not None:
            continue  # a table inside another is read as part of its cell
        rows = [line for tr in table.find_all("tr") if (line := _row_text(tr))]
        replacement = soup.new_tag("div")
        for line in rows:
            paragraph = soup.new_tag("p")
            paragraph.string = line
            replacement.append(paragraph)
        table.replace_with(replacement)


def _row_text(row: Tag) -> str:
    cells = []
    for cell in row.find_all(["td", "th"], recursive=False) or row.find_all(["td", "th"]):
        text = " ".join(plain_text(cell).replace("\xa0", " ").split())
        numbered = cell.find("ol")
        if not text and numbered is not None and numbered.find("li") is not None:
            start = str(numbered.get("start") or "1")
            text = f"{start}." if start.isdigit() else ""
        if text:
            cells.append(text)
    if any(cell in DASHES for cell in cells):  # "name | – | office": the page's own dash joins them
        parts = [cell for cell in cells if cell not in DASHES]
        return (parts[0] + " " + " – ".join(parts[1:])) if len(parts) > 1 and parts[0].endswith(".") \
            else " – ".join(parts)
    return " | ".join(cells)


def _is_contents_heading(text: str) -> bool:
    return " ".join(text.split()).rstrip(":").lower() in CONTENTS_HEADINGS


def _body_text(body: Tag | None) -> str | None:
    """Paragraphs of the body, one per block; text split only by ``<br>`` or ``<div>`` keeps its breaks."""
    if body is None:
        return None
    for junk in body.find_all(["script", "style", "noscript", "iframe"]):
        junk.decompose()
    blocks = body.find_all(["p", "h2", "h3", "h4", "h5", "li", "blockquote"])
    if blocks:
        lines = [" ".join(plain_text(block).split()) for block in blocks if not _inside_block(block, body)]
    else:
        lines = [" ".join(line.split()) for line in _block_text(body).split("\n")]
    return "\n\n".join(line for line in lines if line) or None


def _inside_block(node: Tag, body: Tag) -> bool:
    """Whether ``node`` sits in a list item or quote of ``body`` (whose text already holds it)."""
    for parent in node.parents:
        if parent is body:
            return False
        if parent.name in ("li", "blockquote"):
            return True
    return False


def _block_text(node: Tag) -> str:
    """Text with a line break at every ``<br>`` and around every ``<div>``."""
    parts: list[str] = []
    _collect_blocks(node, parts)
    return "".join(parts)


def _collect_blocks(node: Tag, parts: list[str]) -> None:
    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            parts.append(str(child).replace("\n", " "))
        elif isinstance(child, Tag) and child.name == "br":
            parts.append("\n")
        elif isinstance(child, Tag):
            block = child.name == "div"
            parts.append("\n" if block else "")
            _collect_blocks(child, parts)
            parts.append("\n" if block else "")


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
