"""Word-level differences between versions of a post, for ``legation history``."""

from __future__ import annotations

import difflib
import re

TOKENS = re.compile(r"\S+|\s+")


def word_diff(old: str, new: str, marks: tuple[str, str, str, str] = ("[-", "-]", "{+", "+}")) -> str:
    """``new`` with removed words as ``[-old-]`` and added words as ``{+new+}``."""
    before, after = TOKENS.findall(old), TOKENS.findall(new)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append("".join(before[i1:i2]))
            continue
        if op in ("delete", "replace"):
            out.append(marks[0] + "".join(before[i1:i2]) + marks[1])
        if op in ("insert", "replace"):
            out.append(marks[2] + "".join(after[j1:j2]) + marks[3])
    return "".join(out)
