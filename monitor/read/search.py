"""The search language of ``search``, ``export --query`` and ``browse``: words, "phrases", OR and NOT.

A user writes what they would type into any search box: words, "exact phrases",
initials (``С.В.Лавров``), URLs, hashtags (``#SCO``). Words side by side must all be
there; ``OR`` between two words or phrases takes either; ``NOT word`` or ``-word``
leaves out what holds it (in any of its forms). Nothing in it is syntax that can fail:
every word becomes an FTS5 string (which FTS5 tokenizes as it tokenized the text), so
punctuation is never an error, and an ``OR`` or ``NOT`` with nothing to join is a word.
Each single-token word also matches its other spellings (:mod:`storage.words`: ``ё`` and
``е``, ``ß`` and ``ss``) and its Snowball stems as prefixes, in the languages of its
script (``хартия`` finds ``хартии``, ``Charta`` finds ``Charten``); :class:`SearchQuery`
keeps the words as written apart so that exact matches can be ranked first. ``raw``
passes FTS5 syntax through untouched (AND, OR, NOT, NEAR, prefix*), for those who want it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import snowballstemmer

from monitor.config.settings import STEM_LANGUAGES
from storage.words import fold, index_spellings

DEFAULT_LANGUAGES = ("ru", "en", "de")
MIN_STEM = 3  # shorter stems would match too much as prefixes
# "a phrase" (closed or not, -"left out"), or a word
PHRASE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
TOKEN = re.compile(r"\w+")  # what FTS5's unicode61 tokenizer keeps of a word
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
CYRILLIC_LANGUAGES = frozenset({"ru", "uk"})
FINAL_VOWELS = frozenset("aeiouyаеиоуыэюяь")
MAX_PHRASE_SPELLINGS = 12
NOTHING = '""'  # matches nothing, and is not an error


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """FTS5 expressions for one query: ``exact`` (every word as written) and ``wider``
    (each word in any of its spellings, or its stems as prefixes); ``wider`` is None when
    it adds nothing."""

    text: str
    exact: str
    wider: str | None = None

    @property
    def matching(self) -> str:
        """Everything the query finds, exact or stemmed."""
        return self.wider or self.exact


@dataclass(frozen=True, slots=True)
class _Term:
    tokens: tuple[str, ...]
    quoted: bool


def build_query(text: str, languages: tuple[str, ...] = DEFAULT_LANGUAGES, *, raw: bool = False) -> SearchQuery:
    """``text`` in the plain search language (or raw FTS5 when ``raw``) as FTS5 expressions."""
    if raw:
        return SearchQuery(text, text)
    groups, left_out = _parse(text)
    if not groups:
        return SearchQuery(text, NOTHING)
    exact = _expression(groups, left_out, lambda term: _string(" ".join(term.tokens)), languages)
    wider = _expression(groups, left_out, lambda term: _wider(term, languages), languages)
    return SearchQuery(text, exact, wider if wider != exact else None)


def _parse(text: str) -> tuple[list[list[_Term]], list[_Term]]:
    """Groups of alternatives (all groups must match, any term of a group), and terms left out."""
    groups: list[list[_Term]] = []
    left_out: list[_Term] = []
    join = negate = False
    for match in PHRASE.finditer(text):
        minus, phrase, word = match.group(1), match.group(2), match.group(3)
        if word in ("OR", "NOT", "AND"):
            join, negate = (word == "OR" and bool(groups)), word == "NOT"
            continue
        if word is not None and word.startswith("-") and len(word) > 1:
            minus, word = "-", word[1:]
        tokens = tuple(TOKEN.findall(phrase if phrase is not None else word))
        if not tokens:
            continue  # punctuation alone: nothing to look for
        term = _Term(tokens, phrase is not None)
        if negate or minus:
            left_out.append(term)
        elif join:
            groups[-1].append(term)
        else:
            groups.append([term])
        join = negate = False
    return groups, left_out


def _expression(groups: list[list[_Term]], left_out: list[_Term], form: Callable[[_Term], str],
                languages: tuple[str, ...]) -> str:
    found = " AND ".join(_any([form(term) for term in group]) for group in groups)
    if not left_out:
        return found
    # what is left out is left out in every form, in both tiers
    return f"({found}) NOT {_any([_wider(term, languages) for term in left_out])}"


def _any(alternatives: list[str]) -> str:
    seen: dict[str, str] = {}  # FTS5 matches regardless of case
    for alternative in alternatives:
        seen.setdefault(alternative.lower(), alternative)
    unique = list(seen.values())
    return unique[0] if len(unique) == 1 else f"({' OR '.join(unique)})"


def _string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _wider(term: _Term, languages: tuple[str, ...]) -> str:
    """The term in every spelling the index may hold of it; a single word also by its stems."""
    written = _string(" ".join(term.tokens))
    if len(term.tokens) > 1 or term.quoted:
        spellings = itertools.islice(itertools.product(*(index_spellings(fold(t)) for t in term.tokens)),
                                     MAX_PHRASE_SPELLINGS)
        return _any([written, *(_string(" ".join(combo)) for combo in spellings)])
    folded = fold(term.tokens[0])
    stems = [f"{_string(spelling)}*" for stem in _stems(folded, languages) for spelling in index_spellings(stem)]
    return _any([written, *(_string(s) for s in index_spellings(folded)), *stems])


def _stems(folded: str, languages: tuple[str, ...]) -> list[str]:
    """The word's stems in the languages of its script (none that a shorter stem already
    covers). Where Snowball leaves a word whole, a final vowel is dropped: the stem of
    "Charta" is then "chart", as Snowball makes of "Charten"."""
    cyrillic = bool(CYRILLIC.search(folded))
    found: list[str] = []
    for language in languages:
        if (language in CYRILLIC_LANGUAGES) != cyrillic:
            continue
        stem = _stemmer(language).stemWord(folded)
        if stem == folded and stem[-1:] in FINAL_VOWELS:  # Charta: Snowball keeps it; Charten is "chart"
            stem = stem[:-1]
        if len(stem) >= MIN_STEM:
            found.append(stem)
    found = sorted(set(found), key=len)
    return [stem for i, stem in enumerate(found) if not any(stem.startswith(shorter) for shorter in found[:i])]


@cache
def _stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(STEM_LANGUAGES[language])
