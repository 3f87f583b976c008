"""Patterns: Tcl's glob matching.

    glob_match(pattern, text, nocase)   `string match`, `lsearch -glob`, the patterns of `info` and `array`
    glob_regex(pattern, nocase)         the same as a compiled regex
    fold_case(text)                     Tcl's lower case for -nocase: character by character

Tcl's regular expressions (dialect, leftmost-longest matching, Ctrl-C) are psched.lang.tclregex.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable


__all__ = ["fold_case", "glob_match", "glob_regex", "glob_tester"]

_SIMPLE_LOWER = {"\u0130": "i"}
"""Lower cases of one character that Python gives as two (its full mapping): Tcl's simple one."""


def fold_case(text: str) -> str:
    """Tcl's lower case (`string tolower`, and what -nocase compares): each character lowered
    by itself, so the length never changes and a final sigma stays σ (Python's str.lower makes
    it ς at the end of a word, and İ two characters)."""
    lowered = text.lower()
    if len(lowered) == len(text) and "\u03a3" not in text:
        return lowered
    return "".join(_lower_char(c) for c in text)


def _lower_char(c: str) -> str:
    lowered = c.lower()
    return lowered if len(lowered) == 1 else _SIMPLE_LOWER.get(c, c)


@lru_cache(maxsize=1024)
def glob_regex(pattern: str, nocase: bool = False) -> re.Pattern[str]:
    """Tcl's `string match` pattern as a compiled regex: `*`, `?`, `[a-z]`, and `\\x` for x.

    As in Tcl, there is no negated set (`[^a]` is the set of `^` and `a`) and an unclosed
    `[` is a set that runs to the end of the pattern.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append(".*")
            continue
        if c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:  # Tcl: an unclosed set runs to the end of the pattern
                body = pattern[i + 1:]
                if body.endswith("-") and not body.endswith("\\-"):
                    return re.compile(r"(?!)")  # ...and a range left open never matches
                end = n
            out.append(_glob_set(pattern[i + 1:end]))
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S | (re.I if nocase else 0))


def _glob_set(body: str) -> str:
    items: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            i += 1
            c = body[i]
        if i + 2 < n and body[i + 1] == "-":
            hi = body[i + 2]
            if hi == "\\" and i + 3 < n:
                hi = body[i + 3]
                i += 1
            lo, hi = sorted((c, hi))
            items.append(f"{re.escape(lo)}-{re.escape(hi)}")
            i += 3
            continue
        items.append(re.escape(c) if c not in "&~|-" else "\\" + c)
        i += 1
    return "[" + "".join(items) + "]" if items else r"(?!)"


def glob_match(pattern: str, text: str, nocase: bool = False) -> bool:
    """Tcl's `string match`."""
    if pattern == "*":
        return True
    return glob_tester(pattern, nocase)(text)


@lru_cache(maxsize=1024)
def glob_tester(pattern: str, nocase: bool) -> Callable[[str], bool]:
    """glob_match of one pattern as a function of the text: what glob_regex's match tells,
    done with a string operation when the pattern is a literal, or a literal and one final
    `*` (most patterns are)."""
    literal = pattern[:-1] if pattern.endswith("*") else pattern
    if not nocase and not any(c in literal for c in "*?[\\"):
        return literal.__eq__ if literal is pattern else lambda text: text.startswith(literal)
    rx = glob_regex(pattern, nocase)
    return lambda text: rx.match(text) is not None
