"""The search language of ``search``, ``export --query`` and ``browse``: plain words and "phrases".

A user writes what they would type into any search box: words, "exact phrases",
initials (``С.В.Лавров``), URLs, hashtags (``#SCO``). Nothing in it is syntax that can
fail: every word becomes an FTS5 string (which FTS5 tokenizes as it tokenized the text),
so punctuation is never an error. Each single-token word also matches its Snowball stem
as a prefix, in the languages of its script (``хартия`` finds ``хартии``, ``Charta``
finds ``Charten``), and :class:`SearchQuery` keeps the exact form apart so that exact
matches can be ranked first. ``raw`` passes FTS5 syntax through untouched (AND, OR,
NOT, NEAR, prefix*), for those who want it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import snowballstemmer

from monitor.config.settings import STEM_LANGUAGES

DEFAULT_LANGUAGES = ("ru", "en", "de")
MIN_STEM = 3  # shorter stems would match too much as prefixes
PHRASE = re.compile(r'"([^"]*)"?|(\S+)')  # "a phrase" (closed or not) or a word
TOKEN = re.compile(r"\w+")  # what FTS5's unicode61 tokenizer keeps of a word
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
CYRILLIC_LANGUAGES = frozenset({"ru", "uk"})
FINAL_VOWELS = frozenset("aeiouyаеиоуыэюяь")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """FTS5 expressions for one query: ``exact`` (every word as written) and ``wider``
    (each word, or its stems as prefixes); ``wider`` is None when stemming adds nothing."""

    text: str
    exact: str
    wider: str | None = None

    @property
    def matching(self) -> str:
        """Everything the query finds, exact or stemmed."""
        return self.wider or self.exact


def build_query(text: str, languages: tuple[str, ...] = DEFAULT_LANGUAGES, *, raw: bool = False) -> SearchQuery:
    """``text`` in the plain search language (or raw FTS5 when ``raw``) as FTS5 expressions."""
    if raw:
        return SearchQuery(text, text)
    exact_terms: list[str] = []
    wider_terms: list[str] = []
    for match in PHRASE.finditer(text):
        phrase, word = match.group(1), match.group(2)
        tokens = TOKEN.findall(phrase if phrase is not None else word)
        if not tokens:
            continue  # punctuation alone: nothing to look for
        exact = _string(" ".join(tokens))
        exact_terms.append(exact)
        stems = _stems(tokens[0], languages) if phrase is None and len(tokens) == 1 else []
        wider_terms.append(f"({' OR '.join([exact, *stems])})" if stems else exact)
    if not exact_terms:
        return SearchQuery(text, '""')  # matches nothing, and is not an error
    exact_query = " AND ".join(exact_terms)
    wider_query = " AND ".join(wider_terms)
    return SearchQuery(text, exact_query, wider_query if wider_query != exact_query else None)


def _string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _stems(word: str, languages: tuple[str, ...]) -> list[str]:
    """The word's stems in the languages of its script, as FTS5 prefix terms (none that a shorter
    stem already covers). Where Snowball leaves a word whole, a final vowel is dropped: the
    stem of "Charta" is then "chart", as Snowball makes of "Charten"."""
    folded = word.casefold()
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
    if "ё" in folded:  # Russian is often written with е for ё: провёл, провел
        found.append(folded.replace("ё", "е"))
    found = sorted(set(found), key=len)
    kept = [stem for i, stem in enumerate(found) if not any(stem.startswith(shorter) for shorter in found[:i])]
    return [f"{_string(stem)}*" for stem in kept]


@cache
def _stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(STEM_LANGUAGES[language])
