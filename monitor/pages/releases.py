"""A release in its languages: which release an archived page is, and where its other versions are.

mid.ru publishes one document under ``/ru/``, ``/en/``, ``/de/`` … with the same path and
numeric id. A page is a language version of a release when its URL starts with a language
segment, or when it names translations of itself (``hreflang``, a language switcher). Its other
versions are the translations it names and, on the sites of ``[pages] languages``, the same
path under each listed language; only those on followed domains are queued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from monitor.config.settings import PagesConfig
from monitor.pages.extract import language_prefix

DOCUMENT_NUMBER = re.compile(r"^\d{3,}$")  # mid.ru: /ru/foreign_policy/news/1944000/


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    """The release a page belongs to, its language there, and the other versions to archive."""

    site: str
    number: str
    lang: str | None
    versions: tuple[tuple[str, str, str], ...]  # (language, URL, host) not this page


def plan_release(url: str, lang: str | None, translations: tuple[tuple[str, str], ...],
                 config: PagesConfig, *, find_more: bool = True) -> ReleasePlan | None:
    """The release of the page at ``url`` (extracted language ``lang``, naming ``translations``);
    None when the page has no language dimension. With ``find_more`` off (a page itself found
    as a translation), no further versions are planned: its release was planned already."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    site, languages = config.release_site(host)
    prefix, rest = language_prefix(parts.path)
    if prefix is None and not translations:
        return None
    if prefix is not None and not rest:
        return None  # a site's home page in one language is not a release
    versions: dict[str, str] = {}
    if find_more and config.translations:
        for language, target in translations:
            versions.setdefault(language, target)
        if prefix is not None and _document_number(rest) is not None:  # the same id: only a numbered document
            for language in languages:
                if language != prefix:
                    versions.setdefault(language, _under_language(url, language))
    own = prefix or lang
    followed = tuple(
        (language, target, (urlsplit(target).hostname or "").lower())
        for language, target in sorted(versions.items())
        if language != own and target != url and config.follows(urlsplit(target).hostname or "")
    )
    return ReleasePlan(site=site, number=_number(rest if prefix is not None else parts.path, parts.query),
                       lang=own, versions=followed)


def _number(path: str, query: str) -> str:
    """The release's id on its site: its document number, else the path without its language segment."""
    return _document_number(path) or "/".join(s for s in path.split("/") if s) + (f"?{query}" if query else "")


def _document_number(path: str) -> str | None:
    """The last numeric segment of the path: mid.ru's document number (``/ru/…/news/1944000/``)."""
    return next((s for s in reversed(path.split("/")) if DOCUMENT_NUMBER.match(s)), None)


def _under_language(url: str, language: str) -> str:
    parts = urlsplit(url)
    segments = parts.path.split("/")
    first = next(i for i, segment in enumerate(segments) if segment)
    segments[first] = language
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments), parts.query, ""))
