"""The reading room's pages from Jinja2 templates, escaping on: archive text is always text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from monitor import __version__
from monitor.read.history import word_diff
from monitor.read.paths import Paths
from storage.echoes import TELEGRAM_POST
from storage.search import SNIPPET_CLOSE, SNIPPET_OPEN

URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'«»]+[^\s<>\"'«».,;:!?)\]]")
SNIPPET_TAGS = {SNIPPET_OPEN: "<mark>", SNIPPET_CLOSE: "</mark>"}
DIFF_MARKS = ("\x04", "\x05", "\x06", "\x07")  # removed ... added, in a word diff
DIFF_TAGS = dict(zip(DIFF_MARKS, ("<del>", "</del>", "<ins>", "</ins>"), strict=True))


def with_tags(text: str, tags: dict[str, str], newline: str | None = None) -> Markup:
    """``text`` escaped, its marks (``tags``' keys) as those tags, and its line breaks as
    ``newline`` when one is given."""
    html = str(escape(text))
    for mark, tag in tags.items():
        html = html.replace(mark, tag)
    return Markup(html.replace("\n", newline) if newline is not None else html)


def text_html(text: str | None, paths: Paths | None = None, archived: Iterable[Sequence[Any]] = ()) -> Markup:
    """Plain text as HTML: escaped, its http(s) URLs as links, its line breaks kept; a t.me link
    to a post in ``archived`` ((channel, post_id) pairs) links to the post's page in the archive."""
    if not text:
        return Markup("")
    here = {(str(channel).lower(), int(post_id)): str(channel) for channel, post_id in archived}
    out, last = [], 0
    for match in URL_IN_TEXT.finditer(text):
        out.append(str(escape(text[last:match.start()])))
        url = escape(match.group(0))
        post = TELEGRAM_POST.match(match.group(0))
        key = (post[1].lower(), int(post[2])) if post else None
        if paths is not None and key in here:
            out.append(f'<a href="{escape(paths.post(here[key], key[1]))}">{url}</a>')  # type: ignore[index]
        else:
            out.append(f'<a href="{url}" rel="noreferrer nofollow">{url}</a>')
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out).replace("\n", "<br>\n"))


def marked(snippet: str | None) -> Markup:
    """A search snippet: escaped, its matches in <mark>."""
    return with_tags(snippet or "", SNIPPET_TAGS)


def diff(old: str | None, new: str | None) -> Markup:
    """``new`` with the words removed from ``old`` in <del> and the added ones in <ins>."""
    return with_tags(word_diff(old or "", new or "", DIFF_MARKS), DIFF_TAGS, "<br>\n")


def when(value: str | None) -> str:
    """``2024-05-14T13:10:00Z`` as ``2024-05-14 13:10 UTC``; a bare date stays a date."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return value if len(value) <= 10 else moment.strftime("%Y-%m-%d %H:%M UTC")


def size(value: int | None) -> str:
    if value is None:
        return ""
    amount = float(value)
    for unit in ("bytes", "KB", "MB"):
        if amount < 1024 or unit == "MB":
            return f"{amount:,.0f} {unit}" if unit == "bytes" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return f"{value} bytes"


CHART_WIDTH, CHART_HEIGHT = 600, 120


def chart_points(series: Sequence[Sequence[Any]]) -> str:
    """``(at, value)`` pairs as an SVG polyline's points in a CHART_WIDTH x CHART_HEIGHT box,
    time along x (numbers only: nothing of the archive's text goes into the drawing)."""
    moments = [datetime.fromisoformat(str(at).replace("Z", "+00:00")).timestamp() for at, _ in series]
    values = [float(value) for _, value in series]
    if not moments:
        return ""
    span, low, high = (max(moments) - min(moments)) or 1.0, min(values), max(values)
    rise = (high - low) or 1.0
    return " ".join(f"{(m - min(moments)) / span * CHART_WIDTH:.1f},{CHART_HEIGHT - (v - low) / rise * CHART_HEIGHT:.1f}"
                    for m, v in zip(moments, values, strict=True))


def safe_url(value: Any) -> str | None:
    """An http(s) URL as it may stand in an href; None for anything else (javascript:, data:)."""
    return value if isinstance(value, str) and re.match(r"(?i)^https?://", value) else None


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("monitor.read", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(text_html=text_html, marked=marked, when=when, size=size, safe_url=safe_url)
    env.globals.update(diff=diff, version=__version__, chart_points=chart_points, chart_width=CHART_WIDTH,
                       chart_height=CHART_HEIGHT)
    return env


def render(template: str, paths: Paths, **context: Any) -> str:
    """One page of the reading room; ``paths`` makes its links (server or static export)."""
    return environment().get_template(template).render(paths=paths, static=paths.static, **context)
