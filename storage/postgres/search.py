"""Full-text search on PostgreSQL, from the same expressions that SQLite's FTS5 answers.

The search language (monitor/read/search.py) writes FTS5 expressions: "strings" (a word or a
phrase), "prefixes"*, OR, NOT, AND and parentheses, words side by side meaning AND. Here they
become tsquery text for ``to_tsquery('simple', ...)`` against ``search_words(text)``: the text's
words in lower case with Latin accents removed, as FTS5's ``unicode61 remove_diacritics 2``
tokenizer indexes them, so that the same expression finds the same posts (stems come from the
search language as prefixes, as on SQLite). An expression that is not FTS5 raises ValueError.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"]|"")*")(?P<prefix>\*)?|(?P<op>\(|\)|\bOR\b|\bAND\b|\bNOT\b)|(?P<word>[^\s()"]+))')
WORD = re.compile(r"\w+")
NOTHING = "'\x01nothing'"  # a lexeme no text holds: an empty string matches nothing, as in FTS5


def tsquery_of(expression: str) -> str:
    tokens = _tokens(expression)
    query, at = _or(tokens, 0)
    if at != len(tokens):
        raise ValueError(f"unexpected {tokens[at][1]!r} in the search")
    return query


def _tokens(expression: str) -> list[tuple[str, str]]:
    found, at = [], 0
    expression = expression.strip()
    while at < len(expression):
        match = TOKEN.match(expression, at)
        if match is None or match.end() == at:
            raise ValueError(f"cannot read the search at {expression[at:at + 20]!r}")
        at = match.end()
        if match["string"] is not None:
            found.append(("prefix" if match["prefix"] else "string", match["string"][1:-1].replace('""', '"')))
        elif match["op"] is not None:
            found.append(("op", match["op"]))
        elif match["word"] is not None:
            word = match["word"]
            if ":" in word or word.strip("*") == "" or word.count("*") > 1 or "*" in word.rstrip("*"):
                raise ValueError(f"{word!r} is not a word (column filters and lone * are FTS5's alone)")
            found.append(("prefix" if word.endswith("*") else "string", word.rstrip("*")))
    return found


def _or(tokens: list[tuple[str, str]], at: int) -> tuple[str, int]:
    left, at = _and(tokens, at)
    while at < len(tokens) and tokens[at] == ("op", "OR"):
        right, at = _and(tokens, at + 1)
        left = f"({left} | {right})"
    return left, at


def _and(tokens: list[tuple[str, str]], at: int) -> tuple[str, int]:
    left, at = _unit(tokens, at)
    while at < len(tokens) and tokens[at] != ("op", "OR") and tokens[at] != ("op", ")"):
        if tokens[at] == ("op", "NOT"):
            right, at = _unit(tokens, at + 1)
            left = f"({left} & !{right})"
            continue
        if tokens[at] == ("op", "AND"):
            at += 1
        right, at = _unit(tokens, at)
        left = f"({left} & {right})"
    return left, at


def _unit(tokens: list[tuple[str, str]], at: int) -> tuple[str, int]:
    if at >= len(tokens):
        raise ValueError("the search ends where a word was expected")
    kind, value = tokens[at]
    if (kind, value) == ("op", "("):
        inner, at = _or(tokens, at + 1)
        if at >= len(tokens) or tokens[at] != ("op", ")"):
            raise ValueError("a ( is not closed")
        return inner, at + 1
    if kind == "op":
        raise ValueError(f"{value!r} where a word was expected")
    words = [fold_like_index(w) for w in WORD.findall(value)]
    if not words:
        return NOTHING, at + 1
    lexemes = [_lexeme(w) for w in words]
    if kind == "prefix":
        lexemes[-1] += ":*"
    return (lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")"), at + 1


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


ACCENTED = "àáâãäåāăąçćčďèéêëēėęěìíîïīįıñńňòóôõöøōőùúûüūůűųýÿžźżšśřŕľĺłťţğ"
PLAIN = "aaaaaaaaacccdeeeeeeeeiiiiiiinnnoooooooouuuuuuuuyyzzzssrrlllttg"


def fold_like_index(word: str) -> str:
    """A word as ``search_words`` indexes it (lower case, these Latin accents removed)."""
    return word.lower().translate(str.maketrans(ACCENTED, PLAIN))


# The PostgreSQL statements of storage/search.py and storage/export.py. {filters} as there.
SEARCH_POSTS = """
SELECT c.username AS channel, p.post_id, p.date,
       ts_headline('simple', coalesce(p.text, ''), q.query,
                   'StartSel=' || %(open)s || ', StopSel=' || %(close)s || ', MaxWords=24, MinWords=12') AS snippet
FROM posts p JOIN channels c ON c.id = p.channel_id, (SELECT to_tsquery('simple', %(match)s) AS query) AS q
WHERE search_words(p.text) @@ q.query
    AND (%(since)s::text IS NULL OR p.date >= %(since)s) AND (%(until)s::text IS NULL OR p.date < %(until)s)
    AND (%(channel)s::text IS NULL OR lower(c.username) = lower(%(channel)s))
ORDER BY p.date DESC NULLS LAST, p.channel_id DESC, p.post_id DESC
LIMIT %(limit)s
"""
