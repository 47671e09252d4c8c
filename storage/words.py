"""How words compare: one folding for the search index, the search language and alert rules.

Two words are the same word when their folds are equal. Folding casefolds (``ß`` is
``ss``), removes the accents of Latin letters (``café`` is ``cafe``, ``Lawrów`` is
``lawrow``) and writes Russian ``ё`` as ``е`` (``провёл`` is ``провел``), as Russian
print mostly does. Letters whose marks make another letter of their alphabet keep
them: ``й`` is not ``и``, ``ї`` is not ``і``, ``ў`` is not ``у``.

The full-text index (FTS5's ``unicode61`` tokenizer, ``remove_diacritics 2``) folds
case and Latin accents itself, but keeps ``ß`` and ``ё``: :func:`index_spellings`
gives the spellings under which the index may hold a folded word, so that a search
finds every text that an alert rule would match.
"""

from __future__ import annotations

import functools
import unicodedata

COMBINING_DIAERESIS = "\u0308"
YO_BASES = frozenset("еЕ")  # е + diaeresis is ё
# Variants tried for one word: ё stands in one place of a word (the stress), ß mostly once.
MAX_SPELLINGS = 12


@functools.lru_cache(maxsize=200_000)
def fold(word: str) -> str:
    """``word`` as words are compared: ``Ёлка`` -> ``елка``, ``Straße`` -> ``strasse``, ``мой`` stays ``мой``."""
    kept: list[str] = []
    base = ""
    for char in unicodedata.normalize("NFD", word):
        if unicodedata.combining(char):
            if _is_latin(base) or (base in YO_BASES and char == COMBINING_DIAERESIS):
                continue
        else:
            base = char
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept)).casefold()


def _is_latin(char: str) -> bool:
    return char.isascii() and char.isalpha() or "LATIN" in unicodedata.name(char, "")


def index_spellings(folded: str) -> list[str]:
    """The spellings (lower case) under which the index may hold words whose fold is ``folded``,
    ``folded`` first: each ``е`` may be ``ё`` (one at a time), each ``ss`` may be ``ß``."""
    spellings = [folded]
    spellings += [folded[:i] + "ё" + folded[i + 1:] for i, char in enumerate(folded) if char == "е"]
    ss = [i for i in range(len(folded) - 1) if folded[i:i + 2] == "ss"]
    spellings += [folded[:i] + "ß" + folded[i + 2:] for i in ss]
    if len(ss) > 1:
        spellings.append(folded.replace("ss", "ß"))
    return list(dict.fromkeys(spellings))[:MAX_SPELLINGS]
