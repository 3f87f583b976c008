"""Tcl list syntax: reading a string as a list, writing a list as a string.

Everything in the language is a string; a list is a string read by these rules
(Tcl 8.6, `TclFindElement` / `TclScanElement`):

* elements are separated by ASCII white space (space, tab, newline, CR, FF, VT);
* an element that starts with `{` runs to the matching `}` (nested braces count,
  a backslash hides the next character from the count) and is taken literally;
* an element that starts with `"` runs to the next unescaped `"` and gets
  backslash substitution;
* any other element runs to the next white space and gets backslash
  substitution (so `a\\ b` is one element).

`join_list` writes the canonical form, so that `split_list(join_list(x)) == x`
for every list of strings; `backslash_subst` is shared with the script parser.
Splitting is cached: the interpreter reads the same list strings again and again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from .lazyre import lazy_compile
from .errors import ListError


__all__ = [
    "split_list", "split_tuple", "join_list", "list_tail", "quote_element", "quoted_parts", "backslash_subst",
    "backslash_at", "EditedLists", "EDITED", "KeptForms",
]

# Tcl's list white space is ASCII only (str.split() would also split on \x1c and \xa0).
_SPACE = " \t\n\r\f\v"

# ---------------------------------------------------------------------------------------------
# backslash substitution

_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
}

_BACKSLASH_RE = lazy_compile(
    r"\\(?:"
    r"x([0-9A-Fa-f]{1,2})"          # \xHH: at most two hex digits (Tcl 8.6)
    r"|u([0-9A-Fa-f]{1,4})"         # \uHHHH
    r"|U([0-9A-Fa-f]{1,8})"         # \UHHHHHHHH, stops before exceeding U+10FFFF
    r"|([0-3][0-7]{0,2}|[4-7][0-7]?)"  # \ooo, at most 0o377
    r"|(\n[ \t]*)"                  # backslash-newline plus leading blanks -> one space
    r"|(.)"                         # any other character stands for itself
    r"|\Z)",                        # a final lone backslash is a backslash
    re.S,
)


def _backslash_repl(m: re.Match[str]) -> str:
    hexx, uni, big, octal, newline, other = m.groups()
    if other is not None:
        return _SIMPLE_ESCAPES.get(other, other)
    if hexx is not None:
        return chr(int(hexx, 16))
    if uni is not None:
        return chr(int(uni, 16))
    if octal is not None:
        return chr(int(octal, 8))
    if newline is not None:
        return " "
    if big is not None:
        value = 0
        used = 0
        for ch in big:
            nxt = value * 16 + int(ch, 16)
            if nxt > 0x10FFFF:
                break
            value = nxt
            used += 1
        return chr(value) + big[used:]
    return "\\"


def backslash_at(text: str, pos: int) -> tuple[str, int]:
    """Substitute the one backslash sequence starting at `text[pos]` (a backslash).

    Returns the replacement and the index just after the sequence.
    """
    m = _BACKSLASH_RE.match(text, pos)
    return _backslash_repl(m), m.end()


def backslash_subst(text: str) -> str:
    """Replace Tcl backslash sequences in `text` (\\n \\t \\xHH \\uHHHH \\ooo, backslash-newline...)."""
    if "\\" not in text:
        return text
    return _BACKSLASH_RE.sub(_backslash_repl, text)


# ---------------------------------------------------------------------------------------------
# splitting

# ASCII separators of str.split() that are not Tcl white space.
_SPLIT_ONLY_SPACE = "\x1c\x1d\x1e\x1f"
_WORD_RE = lazy_compile(r"[^ \t\n\r\f\v]+")
_SKIP_SPACE_RE = lazy_compile(r"[ \t\n\r\f\v]*")
_BRACE_SCAN_RE = lazy_compile(r"[{}\\]")
_SIMPLE_BRACED_RE = lazy_compile(r"\{([^{}\\]*)\}")
# A quoted element's body: anything but an unescaped quote.
_QUOTED_BODY_RE = lazy_compile(r'(?:[^"\\]+|\\.|\\\Z)*', re.S)
# A bare element: up to white space; backslash-newline-blanks is one unit inside the element.
_BARE_RE = lazy_compile(r"(?:[^ \t\n\r\f\v\\]+|\\\n[ \t]*|\\.|\\\Z)+", re.S)

# Strings longer than this are split without going through the cache; those longer than
# _SMALL_LEN go through a cache of their own, of a few entries: each entry holds the text, its
# tuple and a string per element (~30 KB for a list of 5 KB), and a macro that grows a list and
# reads it at every job makes a new text each time, so 4,096 entries of up to 16 KB could hold
# hundreds of megabytes for good. The two caches together hold ~30 MB at most.
_CACHE_MAX_LEN = 16384
_SMALL_LEN = 1024


def skip_braced(text: str, pos: int) -> int:
    """Index just after the `}` matching the `{` at `pos`, or -1 if it is never closed.

    Backslashes escape the next character, so `\\{` and `\\}` do not count.
    """
    depth = 0
    scan = pos
    while True:
        m = _BRACE_SCAN_RE.search(text, scan)
        if m is None:
            return -1
        c = m.group()
        scan = m.end()
        if c == "\\":
            scan += 1
        elif c == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return scan


def _garbage(text: str, pos: int) -> str:
    end = pos
    while end < len(text) and end < pos + 20 and text[end] not in _SPACE:
        end += 1
    return text[pos:end]


def _split(text: str) -> tuple[str, ...]:
    # (`in` tests are much faster than a regex character class on long strings)
    if "{" not in text and '"' not in text and "\\" not in text:
        if text.isascii() and not any(c in text for c in _SPLIT_ONLY_SPACE):
            return tuple(text.split())  # same as Tcl here: no non-Tcl separators are present
        return tuple(_WORD_RE.findall(text))
    out: list[str] = []
    n = len(text)
    pos = _SKIP_SPACE_RE.match(text, 0).end()
    while pos < n:
        ch = text[pos]
        if ch == "{":
            simple = _SIMPLE_BRACED_RE.match(text, pos)
            if simple is not None:  # the common case: no nested braces, no backslashes
                scan = simple.end()
                out.append(simple.group(1))
                if scan < n and text[scan] not in _SPACE:
                    raise ListError(
                        f'list element in braces followed by "{_garbage(text, scan)}" instead of space',
                        offset=scan, element=pos,
                    )
                pos = _SKIP_SPACE_RE.match(text, scan).end()
                continue
            scan = skip_braced(text, pos)
            if scan < 0:
                raise ListError("unmatched open brace in list", offset=pos, element=pos)
            out.append(text[pos + 1 : scan - 1])
            if scan < n and text[scan] not in _SPACE:
                raise ListError(
                    f'list element in braces followed by "{_garbage(text, scan)}" instead of space',
                    offset=scan, element=pos,
                )
            pos = scan
        elif ch == '"':
            m = _QUOTED_BODY_RE.match(text, pos + 1)
            end = m.end()
            if end >= n:
                raise ListError("unmatched open quote in list", offset=pos, element=pos)
            out.append(backslash_subst(m.group()))
            end += 1  # the closing quote
            if end < n and text[end] not in _SPACE:
                raise ListError(
                    f'list element in quotes followed by "{_garbage(text, end)}" instead of space',
                    offset=end, element=pos,
                )
            pos = end
        else:
            m = _BARE_RE.match(text, pos)
            out.append(backslash_subst(m.group()))
            pos = m.end()
        pos = _SKIP_SPACE_RE.match(text, pos).end()
    return tuple(out)


_split_cached = lru_cache(maxsize=4096)(_split)
_split_cached_long = lru_cache(maxsize=64)(_split)


def split_tuple(text: str) -> tuple[str, ...]:
    """Read `text` as a Tcl list; the result is shared (cached), hence a tuple.

    Raises ListError (with `.offset` into `text`) for an unmatched brace or quote,
    or for garbage right after a closing brace or quote.
    """
    size = len(text)
    if size <= _SMALL_LEN:
        return _split_cached(text)
    if size <= _CACHE_MAX_LEN:
        return _split_cached_long(text)
    kept = EDITED.kept.peek(text)  # (not cached: unless a change kept its elements, EditedLists)
    return tuple(kept[0]) if kept is not None else _split(text)


def split_list(text: str) -> list[str]:
    """Read `text` as a Tcl list and return a fresh list of its elements."""
    return list(split_tuple(text))


# ---------------------------------------------------------------------------------------------
# joining

# Characters that make an element need braces or backslashes (not `{`/`}` inside a word).
_NEEDS_CARE_RE = lazy_compile(r'[ \t\n\r\f\v\[\]${}";\\]')
# Characters that make braces unsafe or escapes preferable; without them braces always do.
_BRACE_TROUBLE_RE = lazy_compile(r'[{}\\"\]]')

_ESCAPES_OUT = {
    "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "]": "\\]", "[": "\\[", "$": "\\$", ";": "\\;", " ": "\\ ", "\\": "\\\\", '"': '\\"',
}
_ESCAPE_ALL_RE = lazy_compile(r'[\f\n\r\t\v\[\]$; \\"{}]')
_ESCAPE_NO_BRACES_RE = lazy_compile(r'[\f\n\r\t\v\[\]$; \\"]')


def _escape_char(m: re.Match[str]) -> str:
    c = m.group()
    return _ESCAPES_OUT.get(c) or "\\" + c


def quote_element(s: str, *, quote_hash: bool = True) -> str:
    """Write one string as a list element, the way Tcl 8.6 does.

    Plain words stay as they are; the empty string is `{}`; otherwise braces when they
    are balanced and safe, else backslashes. A leading `#` is protected when
    `quote_hash` (Tcl does this for the first element of a list only).
    """
    if not s:
        return "{}"
    if _NEEDS_CARE_RE.search(s) is None:
        return "{" + s + "}" if quote_hash and s[0] == "#" else s
    if _BRACE_TROUBLE_RE.search(s) is None:
        return "{" + s + "}"
    if len(s) > 256 and "\\" not in s and (EDITED.kept.peek(s) is not None or _braces_balanced(s)):
        return _quote_balanced(s, quote_hash)  # (a kept list is canonical: without backslashes its braces pair up)
    hash_first = quote_hash and s[0] == "#"
    forbid_none = s[0] in '{"'
    require_escape = False
    prefer_brace = hash_first or forbid_none
    prefer_escape = False
    depth = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                require_escape = True
        elif c in ']"':
            forbid_none = True
            prefer_escape = True
        elif c in "[$; \f\n\r\t\v":
            forbid_none = True
            prefer_brace = True
        elif c == "\\":
            if i + 1 == n:
                require_escape = True  # braces cannot end in a backslash
            elif s[i + 1] == "\n":
                require_escape = True  # backslash-newline would be substituted inside braces
                i += 1
            else:
                if s[i + 1] in "{}\\":
                    i += 1  # an escaped brace does not count for nesting
                forbid_none = True
                prefer_brace = True
        i += 1
    if depth != 0:
        require_escape = True

    if require_escape:
        body = _ESCAPE_ALL_RE.sub(_escape_char, s)
        return "\\" + body if hash_first else body
    return _quoted_as(s, hash_first, forbid_none, prefer_brace, prefer_escape)


def _quoted_as(s: str, hash_first: bool, forbid_none: bool, prefer_brace: bool, prefer_escape: bool) -> str:
    """The form quote_element chose, once it knows that braces can hold `s`."""
    if forbid_none:
        if prefer_escape and not prefer_brace:
            return _ESCAPE_NO_BRACES_RE.sub(_escape_char, s)
        return "{" + s + "}"
    if hash_first:
        return "{" + s + "}"
    return s


_INNER_BRACES_RE = lazy_compile(r"\{[^{}]*\}")
_BRACE_PASSES = 32


def _braces_balanced(s: str) -> bool:
    """Whether the braces of `s` (which has no backslash) pair up, no `}` before its `{`: what
    quote_element's loop finds one character at a time, found here with C-speed passes that
    take out the innermost pairs (False also when they nest deeper than _BRACE_PASSES: the
    loop decides then)."""
    if "{" not in s and "}" not in s:
        return True
    for _ in range(_BRACE_PASSES):
        s, pairs = _INNER_BRACES_RE.subn("", s)
        if "{" not in s and "}" not in s:
            return True
        if not pairs:
            return False
    return False


_QUOTE_NEEDS_BRACES_RE = lazy_compile(r'[\[$; \f\n\r\t\v]')
_QUOTE_PREFERS_ESCAPE_RE = lazy_compile(r'[\]"]')


def _quote_balanced(s: str, quote_hash: bool) -> str:
    """quote_element's answer for a string without backslashes whose braces pair up (the
    choices of its loop, each made with a C-speed search: a long value, a list itself, is
    quoted in time that hardly depends on its length in Python)."""
    hash_first = quote_hash and s[0] == "#"
    prefer_brace = hash_first or s[0] in '{"' or _QUOTE_NEEDS_BRACES_RE.search(s) is not None
    prefer_escape = _QUOTE_PREFERS_ESCAPE_RE.search(s) is not None
    return _quoted_as(s, hash_first, prefer_brace or prefer_escape, prefer_brace, prefer_escape)


_SPECIAL_BUT_SPACE_RE = lazy_compile(r'[\t\n\r\f\v\[\]${}";\\]')


def join_list(items: Iterable[str]) -> str:
    """Write strings as one canonical Tcl list string (`split_list` reads it back unchanged)."""
    if type(items) is not list:
        items = list(items)
    text = " ".join(items)
    if _plain_words(items, text):
        return text
    return " ".join(_quoted_each(items))


def list_tail(current: str, values: Sequence[str]) -> str:
    """The text that makes canonical list `current` end with `values` (its own text is kept)."""
    if not values:
        return ""
    if not current:
        return join_list(values)  # (a leading `#` is quoted in the first element only)
    return " " + " ".join([quote_element(v, quote_hash=False) for v in values])


def quoted_parts(items: Sequence[str]) -> list[str]:
    """The elements as join_list writes them, a new list: `" ".join(quoted_parts(items)) ==
    join_list(items)` (a leading `#` is quoted in the first element only)."""
    items = list(items)
    return items if _plain_words(items, " ".join(items)) else _quoted_each(items)


def _plain_words(items: list[str], text: str) -> bool:
    """Whether `text`, the items joined by spaces, is their list as it is: most lists are plain
    words (checked with C-speed string operations: no empty word, no blank inside a word, no
    special character, no `#` first)."""
    return bool(text and text[0] != "#" and "" not in items and text.count(" ") == len(items) - 1
                and _SPECIAL_BUT_SPACE_RE.search(text) is None)


def _quoted_each(items: list[str]) -> list[str]:
    parts = []
    first = True
    for item in items:
        parts.append(quote_element(item, quote_hash=first))
        first = False
    return parts


class KeptForms:
    """Forms of long texts kept beside them by the text's identity: a list's elements, a
    dictionary's table, which a command that changes the variable holding the text changes
    in place of reading the text again (Tcl keeps a value's internal form beside its string the
    same way). The text a variable holds is the very string the last change made, so its
    identity finds it; an entry keeps its text alive, so an identity is never taken for another
    string's. `take` hands an entry's form out and forgets it (the caller changes it and `keep`s
    it with the text it made). At most `keep_entries` entries and `keep_chars` characters of
    text are kept, the oldest dropped first; texts shorter than `min_chars` are never kept
    (reading them again costs little, and is cached)."""

    def __init__(self, keep_entries: int = 1024, keep_chars: int = 4 << 20, min_chars: int = 1024) -> None:
        self.keep_entries = keep_entries
        self.keep_chars = keep_chars
        self.min_chars = min_chars
        self._entries: dict[int, tuple[str, tuple]] = {}
        self._chars = 0

    def take(self, text: str) -> tuple | None:
        entry = self._entries.pop(id(text), None)
        if entry is None:
            return None
        self._chars -= len(entry[0])
        return entry[1]

    def peek(self, text: str) -> tuple | None:
        """The form kept for `text`, left in place (the caller must not change it)."""
        entry = self._entries.get(id(text))
        return entry[1] if entry is not None else None

    def keep(self, text: str, form: tuple) -> None:
        size = len(text)
        if size < self.min_chars or size > self.keep_chars:
            return
        entries = self._entries
        while entries and (len(entries) >= self.keep_entries or self._chars + size > self.keep_chars):
            self._chars -= len(entries.pop(next(iter(entries)))[0])
        entries[id(text)] = (text, form)
        self._chars += size

    def clear(self) -> None:
        self._entries.clear()
        self._chars = 0


class EditedLists:
    """Long lists that a command changes in place of the variable that holds them (lset, and
    lappend of an array element or of a dictionary's value), their elements and those quoted
    kept beside their text (KeptForms): the next change of the same variable then neither
    reads the text again (a long list's split is not cached: `_CACHE_MAX_LEN`) nor quotes every
    element again.

        items, parts, canonical = EDITED.take(text)   # the kept lists, now the caller's
        EDITED.keep(new_text, items, parts)           # " ".join(parts) == new_text
        new_text = EDITED.appended(text, values)      # lappend's result, kept

    A text without an entry is split and quoted afresh (`canonical`: the text is
    " ".join(parts) already; else it is in another form, which the caller writes canonical)."""

    MIN_CHARS = 1024

    def __init__(self) -> None:
        self.kept = KeptForms(min_chars=self.MIN_CHARS)

    def take(self, text: str) -> tuple[list[str], list[str], bool]:
        form = self.kept.take(text)
        if form is not None:
            return form[0], form[1], True
        items = list(split_tuple(text))
        return items, quoted_parts(items), False

    def keep(self, text: str, items: list[str], parts: list[str]) -> None:
        self.kept.keep(text, (items, parts))

    def appended(self, text: str, values: Sequence[str]) -> str:
        """List `text` with `values` at its end, canonical (what lappend writes), kept for the
        next change: the text is copied once, its elements neither read nor quoted again. A
        short one is read again (from the split cache) and nothing is kept."""
        if len(text) < self.MIN_CHARS:
            current = join_list(split_tuple(text)) if text else ""
            return current + list_tail(current, values)
        items, parts, canonical = self.take(text)
        added = [quote_element(v, quote_hash=not parts and k == 0) for k, v in enumerate(values)]
        if canonical and parts:
            new = text + " " + " ".join(added) if added else text
        else:
            new = " ".join(parts + added)
        items += values
        parts += added
        self.keep(new, items, parts)
        return new


EDITED = EditedLists()
