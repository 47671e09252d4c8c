"""The archive's SQL, written for SQLite, as PostgreSQL runs it.

storage/ writes its statements once, in SQLite's dialect; on PostgreSQL each is rewritten here,
once (the result is cached), by rules that know the few SQLite forms storage uses:

- placeholders: ``?`` and ``:name`` become ``%s`` and ``%(name)s`` (``%`` itself is doubled);
- ``INSERT OR IGNORE`` becomes ``ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` an upsert on the
  table's primary key;
- ``a = b COLLATE NOCASE`` compares ``lower()``s; ``ORDER BY x COLLATE NOCASE`` orders by ``lower(x)``;
- ``LIKE`` is ``ILIKE`` (SQLite's LIKE ignores case); ``IS ?`` is ``IS NOT DISTINCT FROM``;
- ``group_concat``, ``instr``, ``ifnull``, two-argument ``max``/``min``, ``json_each``,
  ``json_extract`` and the ``strftime`` forms storage uses have their PostgreSQL counterparts;
- ``x IN (SELECT value FROM json_each(?))`` compares ``x`` as text with the JSON array's elements;
- ``? IS NULL`` casts the parameter (PostgreSQL cannot type a NULL parameter alone);
- ``CAST(... AS INTEGER)`` is BIGINT (ids exceed 32 bits); ``BEGIN IMMEDIATE`` is ``BEGIN``.

What no rule can say (SQLite's full-text tables, rowids) is written for each engine where it is used.
String literals are left as they are (only their ``%`` doubled).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

# a string literal, or a comment (dropped: its words are no code, and its apostrophes no quotes)
LITERAL = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)
TIME_FORMAT = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"


def translate(sql: str, keys: Mapping[str, tuple[str, ...]], with_params: bool) -> str:
    """``sql`` for PostgreSQL; ``keys`` the primary key of each table (for INSERT OR REPLACE)."""
    return _translate(sql, tuple(sorted((t, k) for t, k in keys.items())), with_params)


@functools.lru_cache(maxsize=4096)
def _translate(sql: str, keys: tuple[tuple[str, tuple[str, ...]], ...], with_params: bool) -> str:
    text = _outside_literals(sql, _code_rules)
    text = _replace_or(text, dict(keys))
    text = _functions(text)
    if with_params:
        text = _outside_literals(text, _placeholders, inside=lambda literal: literal.replace("%", "%%"))
    return text


def _outside_literals(sql: str, rule: Callable[[str], str], inside: Callable[[str], str] = lambda s: s) -> str:
    out, last = [], 0
    for match in LITERAL.finditer(sql):
        out.append(rule(sql[last:match.start()]))
        out.append(inside(match.group()) if match.group().startswith("'") else " ")
        last = match.end()
    out.append(rule(sql[last:]))
    return "".join(out)


NAME = r"(?:[A-Za-z_][\w]*\.)?[A-Za-z_]\w*|\?|:\w+"


def _code_rules(code: str) -> str:
    code = re.sub(r"\bBEGIN IMMEDIATE\b", "BEGIN", code, flags=re.I)
    code = re.sub(rf"({NAME})\s*(=|!=|<>)\s*({NAME})\s+COLLATE NOCASE", r"lower(\1) \2 lower(\3)", code, flags=re.I)
    code = re.sub(rf"({NAME})\s+COLLATE NOCASE", r"lower(\1)", code, flags=re.I)
    code = re.sub(r"\bNOT LIKE\b", "NOT ILIKE", code)
    code = re.sub(r"(?<!NOT )\bLIKE\b", "ILIKE", code)
    # a parameter alone before IS NULL has no type to PostgreSQL when it is NULL: give it one
    code = re.sub(r"(\?|(?<![:\w]):\w+)\s+IS\s+(NOT\s+)?NULL\b", r"CAST(\1 AS TEXT) IS \2NULL", code, flags=re.I)
    code = re.sub(r"\bIS NOT \?", "IS DISTINCT FROM ?", code)
    code = re.sub(r"\bIS \?", "IS NOT DISTINCT FROM ?", code)
    code = re.sub(r"\bAS INTEGER\)", "AS BIGINT)", code, flags=re.I)
    code = re.sub(rf"({NAME})\s+(NOT\s+)?IN\s*\(\s*SELECT value FROM json_each\((\?|:\w+)\)\s*\)",
                  r"CAST(\1 AS TEXT) \2IN (SELECT value FROM json_array_elements_text(CAST(\3 AS json)))", code)
    code = re.sub(r"\bjson_each\(([^()]*)\)(?:\s+AS)?\s+(?!WHERE\b|ORDER\b|JOIN\b|ON\b|GROUP\b)([A-Za-z_]\w*)",
                  r"json_array_elements_text(CAST(\1 AS json)) WITH ORDINALITY AS \2(value, key)", code)
    code = re.sub(r"\bjson_each\(([^()]*)\)",
                  r"json_array_elements_text(CAST(\1 AS json)) WITH ORDINALITY AS json_each(value, key)", code)
    return code


def _replace_or(sql: str, keys: Mapping[str, tuple[str, ...]]) -> str:
    sql = re.sub(r"\bINSERT OR IGNORE INTO\b(.*)$", r"INSERT INTO\1 ON CONFLICT DO NOTHING", sql, flags=re.S)
    match = re.match(r"\s*INSERT OR REPLACE INTO (\w+)\s*\(([^)]*)\)(.*)$", sql, flags=re.S)
    if match:
        table, columns, rest = match[1], [c.strip() for c in match[2].split(",")], match[3]
        key = keys[table]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        sql = (f"INSERT INTO {table} ({', '.join(columns)}){rest} ON CONFLICT ({', '.join(key)}) "
               + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING"))
    return sql


def _functions(sql: str) -> str:
    """Function calls whose arguments matter, rewritten with their arguments found by parentheses."""
    for name, rewrite in FUNCTIONS.items():
        sql = _each_call(sql, name, rewrite)
    return re.sub(r"<<\s*(least\([^()]*\))", r"<< CAST(\1 AS INT)", sql)  # a shift's count is an int4


def _each_call(sql: str, name: str, rewrite: Callable[[list[str]], str | None]) -> str:
    pattern = re.compile(rf"(?<![\w.]){name}\(", re.I)
    start = 0
    while (match := pattern.search(sql, start)) is not None:
        args, end = _arguments(sql, match.end())
        args = [_each_call(arg, name, rewrite) for arg in args]  # calls inside the arguments first
        replaced = rewrite(args)
        if replaced is None:
            start = match.end()
            continue
        sql = sql[:match.start()] + replaced + sql[end:]
        start = match.start() + len(replaced)
    return sql


def _arguments(sql: str, at: int) -> tuple[list[str], int]:
    """The comma-separated arguments of a call whose "(" ends at ``at``, and where the call ends."""
    depth, args, current, i, quoted = 0, [], "", at, False
    while i < len(sql):
        ch = sql[i]
        if quoted:
            current += ch
            if ch == "'":
                quoted = False
        elif ch == "'":
            quoted, current = True, current + ch
        elif ch == "(":
            depth, current = depth + 1, current + ch
        elif ch == ")":
            if depth == 0:
                args.append(current.strip())
                return [a for a in args if a], i + 1
            depth, current = depth - 1, current + ch
        elif ch == "," and depth == 0:
            args.append(current.strip())
            current = ""
        else:
            current += ch
        i += 1
    raise ValueError(f"unbalanced parentheses in {sql!r}")


def _group_concat(args: list[str]) -> str:
    return f"string_agg(CAST({args[0]} AS TEXT), {args[1] if len(args) > 1 else repr(',')})"


def _two_args(function: str) -> Callable[[list[str]], str | None]:
    return lambda args: f"{function}({', '.join(args)})" if len(args) >= 2 else None


def _json_extract(args: list[str]) -> str:
    path = args[1].strip("'")
    value = f"CAST({args[0]} AS json)"
    steps = re.findall(r"\.(\w+)|\[(\d+)\]", path.removeprefix("$"))
    expression = value
    for index, (key, number) in enumerate(steps):
        arrow = "->>" if index == len(steps) - 1 else "->"
        expression = f"({expression} {arrow} {repr(key) if key else number})"
    return expression


def _strftime(args: list[str]) -> str | None:
    form = args[0]
    moment = "now()" if args[1] == "'now'" else f"CAST({args[1]} AS timestamptz)"
    for modifier in args[2:]:  # '+' || ? || ' seconds', or '-7 days'
        amount = re.fullmatch(r"'\+'\s*\|\|\s*(.+?)\s*\|\|\s*' seconds'", modifier)
        literal = re.fullmatch(r"'([+-]?\d+(?:\.\d+)?) (second|minute|hour|day|month|year)s?'", modifier)
        if amount is not None:
            moment = f"({moment} + make_interval(secs => CAST({amount[1]} AS double precision)))"
        elif literal is not None:
            moment = f"({moment} + interval '{literal[1]} {literal[2]}s')"
        else:
            return None
    if form == "'%s'":
        return f"CAST(extract(epoch FROM {moment}) AS BIGINT)"
    if form == "'%Y-%m-%dT%H:%M:%SZ'":
        return f"to_char({moment} AT TIME ZONE 'UTC', {TIME_FORMAT})"
    return None


FUNCTIONS: dict[str, Callable[[list[str]], str | None]] = {
    "group_concat": _group_concat,
    "instr": lambda args: f"strpos({', '.join(args)})",
    "ifnull": lambda args: f"coalesce({', '.join(args)})",
    "max": _two_args("greatest"),
    "min": _two_args("least"),
    "json_extract": _json_extract,
    "strftime": _strftime,
}


def _placeholders(code: str) -> str:
    code = code.replace("%", "%%")
    code = code.replace("?", "%s")
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", code)
