"""Keyword rules compiled together: folded, optionally stemmed, whole-word or prefix matching.

Text and keywords go through the same steps: NFC, split into words (``\\w+``), each
word casefolded (ß is ss), stemmed with Snowball for rules with a ``language``, and
folded as search folds (:func:`storage.words.fold`: Latin accents off, ё is е, й stays
й). A keyword (or phrase) matches when its words appear consecutively. Every keyword of every rule sits in one index
keyed by its first word, so a text costs one dictionary lookup per word, whatever
the number of keywords.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import snowballstemmer

from monitor.config.checks import compile_pattern
from monitor.config.settings import STEM_LANGUAGES, AlertRule
from storage.words import fold

WORD = re.compile(r"\w+")
CONTEXT = 80  # characters of text shown on each side of the first match
MAX_MATCHED_CHARS = 1_000_000  # of a text (a release page may be longer); posts are 4,096 at most


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched a text: which of its terms, and the text around the first."""

    rule: str
    terms: tuple[str, ...]
    context: str


@functools.lru_cache(maxsize=32)
def _stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(STEM_LANGUAGES[language])


@functools.lru_cache(maxsize=500_000)
def normalise(word: str, language: str | None) -> str:
    """One word as matching sees it: stemmed as written (the stemmer knows й, ё, ä), then folded."""
    if language is None:
        return fold(word)
    return fold(_stemmer(language).stemWord(word.casefold()))


def words(text: str, language: str | None) -> list[tuple[str, int, int]]:
    """``(normalised word, start, end)`` for each word of ``text`` (offsets into its NFC form)."""
    return [(normalise(m.group(), language), m.start(), m.end()) for m in WORD.finditer(text)]


@dataclass(frozen=True, slots=True)
class _Entry:
    rest: tuple[str, ...]  # the phrase's words after the first
    rule: int
    term: str  # the keyword as written in the config
    exclude: bool


class Matcher:
    """All rules, compiled once; ``match`` is pure."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        self.rules = list(rules)
        # (language, whole_words) -> first word -> entries
        self._index: dict[tuple[str | None, bool], dict[str, list[_Entry]]] = defaultdict(lambda: defaultdict(list))
        self._prefix_lengths: dict[tuple[str | None, bool], set[int]] = defaultdict(set)
        self._regex = [[compile_pattern(p) for p in rule.regex] for rule in self.rules]
        for index, rule in enumerate(self.rules):
            group = (rule.language, rule.whole_words)
            for term, exclude in [(k, False) for k in rule.keywords] + [(k, True) for k in rule.exclude]:
                phrase = [w for w, _, _ in words(unicodedata.normalize("NFC", term), rule.language)]
                if phrase:
                    self._index[group][phrase[0]].append(_Entry(tuple(phrase[1:]), index, term, exclude))
                    self._prefix_lengths[group].add(len(phrase[0]))

    def match(self, text: str | None, *, scope: str | None = None, channels: Iterable[str] = ()) -> list[Match]:
        """Rules that match ``text``, for a target in ``scope`` from ``channels`` (any of them)."""
        if not text:
            return []
        # Matching runs in the transaction that saves the text: a bound on its length is a bound
        # on its time (about 0.3 s for a million characters here, RE2 and keywords together).
        text = unicodedata.normalize("NFC", text[:MAX_MATCHED_CHARS])
        wanted = {c.lower() for c in channels}
        allowed = [
            (scope is None or scope in rule.scope)
            and (not rule.channels or not wanted or bool(wanted & {c.lower() for c in rule.channels}))
            for rule in self.rules
        ]
        hits: dict[int, list[tuple[str, int]]] = defaultdict(list)
        excluded: set[int] = set()
        for (language, whole), index in self._index.items():
            self._scan(words(text, language), index, whole, self._prefix_lengths[(language, whole)],
                       allowed, hits, excluded)
        for rule_index, patterns in enumerate(self._regex):
            if allowed[rule_index]:
                for pattern in patterns:
                    found = pattern.search(text)
                    if found:
                        hits[rule_index].append((found.group(), found.start()))
        return [
            Match(self.rules[i].name, tuple(dict.fromkeys(term for term, _ in found)), _context(text, found[0][1]))
            for i, found in sorted(hits.items())
            if i not in excluded
        ]

    def _scan(self, tokens: list[tuple[str, int, int]], index: dict[str, list[_Entry]], whole: bool,
              lengths: set[int], allowed: list[bool], hits: dict[int, list[tuple[str, int]]],
              excluded: set[int]) -> None:
        for position, (word, start, _) in enumerate(tokens):
            keys = [word] if whole else [word[:n] for n in lengths if n <= len(word)]
            for key in keys:
                for entry in index.get(key, ()):
                    if allowed[entry.rule] and _follows(tokens, position + 1, entry.rest, whole):
                        if entry.exclude:
                            excluded.add(entry.rule)
                        else:
                            hits[entry.rule].append((entry.term, start))


def _follows(tokens: list[tuple[str, int, int]], at: int, rest: tuple[str, ...], whole: bool) -> bool:
    if at + len(rest) > len(tokens):
        return False
    for offset, expected in enumerate(rest):
        word = tokens[at + offset][0]
        if not (word == expected if whole else word.startswith(expected)):
            return False
    return True


def _context(text: str, at: int) -> str:
    start, end = max(0, at - CONTEXT), min(len(text), at + CONTEXT)
    snippet = " ".join(text[start:end].split())
    return ("…" if start else "") + snippet + ("…" if end < len(text) else "")
