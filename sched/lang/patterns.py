"""Patterns: Tcl's glob matching and Tcl's regular-expression dialect on Python's `re`.

    glob_match(pattern, text, nocase)   `string match`, `lsearch -glob`, the patterns of `info` and `array`
    glob_regex(pattern, nocase)         the same as a compiled regex
    tcl_regex(pattern, ...)             a Tcl regular expression (ARE) compiled with `re`

`tcl_regex` gives Python's `re` Tcl's dialect:

* `.` matches a newline and `$` matches only at the very end, as in Tcl (not before a final
  newline, as in Python), unless `-line` / `-linestop` / `-lineanchor` say otherwise;
* `\\m` `\\M` (start / end of a word), `\\y` `\\Y` (word boundary or not), `\\b` (backspace),
  `\\B` (backslash), `\\e`, `\\xhhh`, `\\cX`, `[[:alpha:]]`-style classes, the `***=` (literal)
  and `***:` prefixes and leading `(?inxsqc)` option letters are translated.

What still differs from Tcl's ARE engine: alternation is leftmost-first (Python), not
leftmost-longest (POSIX), so `regexp {a|ab} ab m` sets m to "a" where Tcl says "ab";
`[^x]` matches a newline even under `-linestop`; collating elements `[.x.]` and equivalence
classes `[=x=]` stand for their single character; Python-only syntax (lookbehind, named
groups) is accepted instead of being an error.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import ScriptError

__all__ = ["glob_match", "glob_regex", "tcl_regex"]


@lru_cache(maxsize=1024)
def glob_regex(pattern: str, nocase: bool = False) -> re.Pattern[str]:
    """Tcl's `string match` pattern as a compiled regex: `*`, `?`, `[a-z]`, and `\\x` for x.

    As in Tcl, there is no negated set (`[^a]` is the set of `^` and `a`) and an unclosed
    `[` matches nothing.
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
            if end < 0:
                return re.compile(r"(?!)")  # Tcl: an unclosed bracket never matches
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
    return glob_regex(pattern, nocase).match(text) is not None


_POSIX_CLASSES = {
    "digit": r"0-9", "upper": "A-Z", "lower": "a-z", "space": r"\s", "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f", "word": r"\w", "cntrl": r"\x00-\x1f\x7f",
    "print": r" -~", "graph": r"!-~",
}
# Classes Python can only say as a set of their own; a bracket expression that holds one
# becomes an alternation (or, negated, a lookahead), which is exact.
_POSIX_SETS = {"alpha": r"[^\W\d_]", "alnum": r"[^\W_]"}

_ESCAPE_CHARS = {"a": r"\x07", "b": r"\x08", "B": r"\\", "e": r"\x1b", "f": r"\x0c", "n": r"\n",
                 "r": r"\r", "t": r"\t", "v": r"\x0b"}


def _escape_at(pattern: str, i: int, in_set: bool) -> tuple[str, int]:
    """Translate the escape starting at pattern[i] (a backslash); return it and the next index."""
    if i + 1 >= len(pattern):
        raise ScriptError("couldn't compile regular expression pattern: invalid escape \\ sequence")
    c = pattern[i + 1]
    if c in _ESCAPE_CHARS:
        return _ESCAPE_CHARS[c], i + 2
    if not in_set:
        if c == "m":
            return r"\b(?=\w)", i + 2
        if c == "M":
            return r"\b(?<=\w)", i + 2
        if c == "y":
            return r"\b", i + 2
        if c == "Y":
            return r"\B", i + 2
    if c == "x":
        m = re.compile(r"[0-9a-fA-F]+").match(pattern, i + 2)
        if m is None:
            return "x", i + 2
        return re.escape(chr(int(m.group()[-8:], 16) % 0x110000)), m.end()
    if c == "c" and i + 2 < len(pattern):
        return re.escape(chr(ord(pattern[i + 2]) & 0x1F)), i + 3
    if c.isalnum() or c == "_":
        return "\\" + c, i + 2  # \d \s \w \uXXXX \1 ... mean the same in Python
    return re.escape(c), i + 2


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at pattern[i] (`[`); return it and the next index."""
    items: list[str] = []
    extras: list[str] = []
    j = i + 1
    n = len(pattern)
    negated = j < n and pattern[j] == "^"
    if negated:
        j += 1
    if j < n and pattern[j] == "]":
        items.append(r"\]")
        j += 1
    while j < n and pattern[j] != "]":
        c = pattern[j]
        if c == "[" and j + 1 < n and pattern[j + 1] in ":.=":
            kind = pattern[j + 1]
            end = pattern.find(kind + "]", j + 2)
            if end < 0:
                raise ScriptError("couldn't compile regular expression pattern: unmatched [")
            name = pattern[j + 2:end]
            if kind != ":":
                items.append(re.escape(name))
            elif name in _POSIX_SETS:
                extras.append(_POSIX_SETS[name])
            elif name in _POSIX_CLASSES:
                items.append(_POSIX_CLASSES[name])
            else:
                raise ScriptError(f'couldn\'t compile regular expression pattern: invalid character class "{name}"')
            j = end + 2
            continue
        if c == "\\":
            text, j = _escape_at(pattern, j, True)
            items.append(text)
            continue
        items.append("\\" + c if c in "[&~|" else c)
        j += 1
    if j >= n:
        raise ScriptError("couldn't compile regular expression pattern: brackets [] not balanced")
    body = "".join(items)
    if not extras:
        return ("[^" if negated else "[") + body + "]", j + 1
    if negated:
        return "(?:(?!" + "|".join(extras) + ")" + ("[^" + body + "]" if body else r"[\s\S]") + ")", j + 1
    return "(?:" + "|".join(([f"[{body}]"] if body else []) + extras) + ")", j + 1


_LEADING_OPTIONS = re.compile(r"\(\?([bceimnpqstwx]+)\)")


@lru_cache(maxsize=512)
def tcl_regex(pattern: str, nocase: bool = False, linestop: bool = False, lineanchor: bool = False,
              expanded: bool = False) -> re.Pattern[str]:
    """Compile a Tcl regular expression (ARE) with Python's `re`; see the module docstring."""
    literal = False
    if pattern.startswith("***="):
        literal, pattern = True, pattern[4:]
    elif pattern.startswith("***:"):
        pattern = pattern[4:]
    m = _LEADING_OPTIONS.match(pattern) if not literal else None
    if m is not None:
        for letter in m.group(1):
            if letter == "i":
                nocase = True
            elif letter == "c":
                nocase = False
            elif letter in "nm":
                linestop = lineanchor = True
            elif letter == "p":
                linestop = True
            elif letter == "w":
                lineanchor = True
            elif letter == "s":
                linestop = lineanchor = False
            elif letter == "x":
                expanded = True
            elif letter == "t":
                expanded = False
            elif letter == "q":
                literal = True
            else:
                raise ScriptError(f'couldn\'t compile regular expression pattern: unsupported embedded option "{letter}"')
        pattern = pattern[m.end():]
    flags = (re.I if nocase else 0) | (0 if linestop else re.S) | (re.M if lineanchor else 0) | (re.X if expanded else 0)
    if literal:
        return re.compile(re.escape(pattern), flags)
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            text, i = _escape_at(pattern, i, False)
            out.append(text)
        elif c == "[":
            text, i = _bracket(pattern, i)
            out.append(text)
        elif c == "$" and not lineanchor:
            out.append(r"\Z")
            i += 1
        else:
            out.append(c)
            i += 1
    try:
        return re.compile("".join(out), flags)
    except re.error as err:
        raise ScriptError(f"couldn't compile regular expression pattern: {err}") from None
    except (OverflowError, RecursionError):
        raise ScriptError("couldn't compile regular expression pattern: too complex") from None
