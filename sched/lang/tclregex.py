"""Tcl's regular expressions (ARE) on the `regex` package: dialect, matching rules, Ctrl-C.

    rx = tcl_regex(pattern, nocase, linestop, lineanchor, expanded)   # cached
    m = regex_search(interp, rx, text, start)                         # None or a match

The dialect is translated to the `regex` package's syntax:

* `.` matches a newline and `$` matches only at the very end, as in Tcl (not before a final
  newline, as in Python), unless `-line` / `-linestop` / `-lineanchor` say otherwise;
* `\\m` `\\M` (start / end of a word), `\\y` `\\Y` (word boundary or not), `\\b` (backspace),
  `\\B` (backslash), `\\e`, `\\xhhh`, `\\cX`, `[[:alpha:]]`-style classes, the `***=` (literal)
  and `***:` prefixes and leading `(?inxsqc)` option letters.

Matching follows Tcl's rule (re_syntax(n), "Matching"): of the matches that start earliest,
a pattern that *prefers longest* takes the longest, one that *prefers shortest* the shortest.
A pattern prefers shortest when the first quantifier in it is non-greedy (`*?`, `+?`, `??`,
`{m,n}?`) and no alternation `|` stands before it at its level; otherwise longest. Longest is
the `regex` package's POSIX mode (leftmost-longest); shortest is every quantifier made
non-greedy, which finds the leftmost-shortest match. So `regexp {a|ab} ab` gives `ab` and
`x(\\d+|\\d+\\.\\d+)` on `x3.25` gives `x3.25`, as in Tcl.

What still differs from Tcl: which part of the overall match each *subexpression* takes when
several splits give the same overall match (Tcl gives the earlier subexpression its own
preference; the POSIX mode takes the first split that the backtracking finds: `(a|ab)(c|bcd)`
on `abcd` is `a bcd` here, `ab c` in Tcl; `[^x]` matches a newline even under `-linestop`;
collating elements `[.x.]` and equivalence classes `[=x=]` stand for their single character;
syntax of the `regex` package that Tcl lacks (lookbehind, named groups) is accepted.

The `regex` package backtracks, so a pathological pattern (`(a|aa)+$` on a long run of `a`)
can take long where Tcl's automaton answers at once. The package checks for signals while it
matches, so a match runs inside Interp.interruptible: Ctrl-C stops it at once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .lazyre import lazy_compile
from .errors import ScriptError

if TYPE_CHECKING:
    import regex
    from regex import Match, Pattern

__all__ = ["tcl_regex", "regex_search", "regex_finditer", "prefers_shortest", "Pattern", "Match"]



class _Package:
    """The `regex` package, imported when a script first uses a regular expression: importing
    it costs ~10 ms of every start-up otherwise (issue 13). The first use replaces this stand-in."""

    def __getattr__(self, name: str) -> Any:
        import regex as package  # see the class docstring

        globals()["regex"] = package
        return getattr(package, name)


if not TYPE_CHECKING:
    regex = _Package()


def __getattr__(name: str) -> Any:
    """`Pattern` and `Match`, the package's types, for those who import them from here."""
    if name in ("Pattern", "Match"):
        return getattr(regex, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# As Tcl defines them, by Unicode category (digit is Nd, upper Lu, punct P*, cntrl Cc Cf Co; its
# space takes five invisible characters and leaves out \x1c-\x1f).
_SPACE = r" \t\n\v\f\r\x85\p{Z}\u180e\u200b\u2060\ufeff"
_GRAPH = r"\p{L}\p{M}\p{N}\p{P}\p{S}"
_POSIX_CLASSES = {
    "digit": r"\p{Nd}", "upper": r"\p{Lu}", "lower": r"\p{Ll}", "space": _SPACE, "blank": r" \t",
    "punct": r"\p{P}", "xdigit": "0-9A-Fa-f", "word": r"\w", "cntrl": r"\p{Cc}\p{Cf}\p{Co}",
    "print": _GRAPH + r" \x85\p{Z}\u180e\u200b\u2060\ufeff", "graph": _GRAPH,
    "alpha": r"\p{L}", "alnum": r"\p{L}\p{Nd}",
}
_WORD = r"\p{L}\p{Nd}\p{Pc}"  # Tcl's \w: letters, digits and connectors like _ (the package's also takes marks and Nl)

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
        m = regex.compile(r"[0-9a-fA-F]+").match(pattern, i + 2)
        if m is None:
            return "x", i + 2
        return regex.escape(chr(int(m.group()[-8:], 16) % 0x110000)), m.end()
    if c == "c" and i + 2 < len(pattern):
        return regex.escape(chr(ord(pattern[i + 2]) & 0x1F)), i + 3
    if c in "swSW":  # Tcl's [[:space:]] and [[:alnum:]_], not the package's
        chars = _SPACE if c in "sS" else _WORD
        if in_set:
            return (chars, i + 2) if c in "sw" else ("\\" + c, i + 2)
        return ("[" if c in "sw" else "[^") + chars + "]", i + 2
    if c.isalnum() or c == "_":
        return "\\" + c, i + 2  # \d \uXXXX \1 ... mean the same in Python
    return regex.escape(c), i + 2


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at pattern[i] (`[`); return it and the next index."""
    items: list[str] = []
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
                items.append(regex.escape(name))
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
    return ("[^" if negated else "[") + "".join(items) + "]", j + 1


_LEADING_OPTIONS = lazy_compile(r"\(\?([bceimnpqstwx]+)\)")  # (plain `re`: no need of the package here)


@lru_cache(maxsize=512)
def tcl_regex(pattern: str, nocase: bool = False, linestop: bool = False, lineanchor: bool = False,
              expanded: bool = False) -> Pattern:
    """Compile a Tcl regular expression (ARE) for the `regex` package; see the module docstring."""
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
    flags = (regex.I if nocase else 0) | (0 if linestop else regex.S) | (regex.M if lineanchor else 0) | (regex.X if expanded else 0)
    if literal:
        return regex.compile(regex.escape(pattern), flags)
    if expanded:  # the preference is read from the pattern without its blanks and comments
        pattern = _unexpand(pattern)
        flags &= ~regex.X
    shortest = prefers_shortest(pattern)
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
        elif shortest and (c in "*+?" or (c == "{" and _BOUND.match(pattern, i))) and i > 0 and pattern[i - 1] != "(":
            end = _quantifier_end(pattern, i)
            out.append(pattern[i:end])
            i = end
            if i < n and pattern[i] == "?":
                i += 1
            out.append("?")  # every quantifier non-greedy: the leftmost-shortest match
        elif c == "{" and not _BOUND.match(pattern, i):
            out.append(r"\{")  # as in Tcl, a brace that starts no bound is itself (`a{,2}`, `{x}`)
            i += 1
        elif c == "{" and any(int(k) > 255 for k in pattern[i + 1:_quantifier_end(pattern, i) - 1].split(",") if k):
            raise ScriptError("couldn't compile regular expression pattern: invalid repetition count(s)")  # Tcl's limit
        else:
            out.append(c)
            i += 1
    if not shortest:
        flags |= regex.POSIX
    try:
        return regex.compile("".join(out), flags)
    except regex.error as err:
        raise ScriptError(f"couldn't compile regular expression pattern: {_tcl_wording(err)}") from None
    except (OverflowError, RecursionError):
        raise ScriptError("couldn't compile regular expression pattern: too complex") from None


_WORDING = (("missing )", "parentheses () not balanced"), ("unbalanced parenthesis", "parentheses () not balanced"),
            ("unterminated character set", "brackets [] not balanced"), ("nothing to repeat", "quantifier operand invalid"),
            ("multiple repeat", "quantifier operand invalid"), ("bad escape", "invalid escape \\ sequence"),
            ("min repeat greater than max repeat", "invalid repetition count(s)"),
            ("invalid group reference", "invalid backreference number"), ("unknown extension", "invalid embedded option"))


def _tcl_wording(err: regex.error) -> str:
    """Tcl's words for the common ways a pattern is malformed; the package's otherwise."""
    text = str(err)
    for theirs, tcl in _WORDING:
        if text.startswith(theirs):
            return tcl
    return text


def _quantifier_end(pattern: str, i: int) -> int:
    """The index just past the quantifier at pattern[i] (`*`, `+`, `?` or a bound `{m,n}`)."""
    if pattern[i] != "{":
        return i + 1
    close = pattern.find("}", i)
    return close + 1 if close > 0 else i + 1


_BOUND = lazy_compile(r"\{\d+(,\d*)?\}")


def _group_has_alternation(pattern: str, i: int) -> bool:
    """Whether the group opening at pattern[i] has a `|` at its own level."""
    depth = 0
    j, n = i, len(pattern)
    while j < n:
        c = pattern[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = _bracket_end(pattern, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return False
        elif c == "|" and depth == 1:
            return True
        j += 1
    return False


def _bracket_end(pattern: str, i: int) -> int:
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        if pattern[j] == "[" and j + 1 < len(pattern) and pattern[j + 1] in ":.=":
            close = pattern.find(pattern[j + 1] + "]", j + 2)
            j = close + 2 if close > 0 else j + 1
            continue
        j += 1
    return j + 1


@lru_cache(maxsize=512)
def prefers_shortest(pattern: str) -> bool:
    """Tcl's preference of a whole pattern: True when it prefers the shortest match.

    An alternation at the top prefers longest; otherwise the first quantifier with a
    preference decides (non-greedy: shortest); a group with an alternation in it, met before
    any quantifier, prefers longest; `{m}` has no preference of its own."""
    depth = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _bracket_end(pattern, i)
            continue
        if c == "|" and depth == 0:
            return False
        if c == "(":
            if i + 1 < n and pattern[i + 1] == "?":  # (?:...), (?=...): skip the marker
                if _group_has_alternation(pattern, i):
                    return False
                depth += 1
                i += 3 if i + 2 < n and pattern[i + 2] in ":=!" else 2
                continue
            if _group_has_alternation(pattern, i):
                return False
            depth += 1
        elif c == ")":
            depth -= 1
        elif c in "*+?" or (c == "{" and _BOUND.match(pattern, i)):
            end = _quantifier_end(pattern, i)
            if c == "{" and "," not in pattern[i:end]:
                i = end + (1 if end < n and pattern[end] == "?" else 0)
                continue
            return end < n and pattern[end] == "?"
        i += 1
    # Only top-level alternation was checked at depth 0; one that comes after the first
    # quantifier does not matter, one before it was caught above.
    return False


def _unexpand(pattern: str) -> str:
    """An expanded (-expanded, (?x)) pattern without its blanks and #-comments."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i:i + 2])
            i += 2
        elif c == "[":
            end = _bracket_end(pattern, i)
            out.append(pattern[i:end])
            i = end
        elif c in " \t\n\r\f\v":
            i += 1
        elif c == "#":
            while i < n and pattern[i] != "\n":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def regex_search(interp: Any, rx: Pattern, text: str, start: int = 0) -> Match | None:
    """`rx.search(text, start)`, stopped by Ctrl-C (Interp.interruptible) however long it takes."""
    with interp.interruptible():
        return rx.search(text, start)


def regex_finditer(interp: Any, rx: Pattern, text: str, start: int = 0) -> list[Match]:
    """Every match from `start` on, as Python finds them (an empty match may follow another)."""
    with interp.interruptible():
        return list(rx.finditer(text, start))
