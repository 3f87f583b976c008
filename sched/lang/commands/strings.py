"""String commands: the `string` ensemble, `format`, `regexp` and `regsub`.

Their argument helpers are psched's args module, glob matching its patterns module; regular
expressions are Tcl's dialect and matching rules on the `regex` package (psched.lang.tclregex),
matched so that Ctrl-C stops even a long match.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

from ..lazyre import lazy_compile
from ..args import MAX_STRING, get_float, get_int, index_of, parse_options, set_arity
from ..errors import ListError, ScriptError
from ..expr import parse_number
from ..patterns import fold_case, glob_match
from ..registry import BUILTINS
from ..tcllist import join_list, split_tuple
from ..tclregex import regex_finditer, regex_search, tcl_regex

if TYPE_CHECKING:
    from regex import Match, Pattern


__all__ = ["tcl_format"]

MAX_FIELD = 1 << 20
"""Widest `format` field width or precision accepted."""


def _check_size(n: int, what: str) -> None:
    if n > MAX_STRING:
        raise ScriptError(f"{what}: result would be longer than {MAX_STRING} characters")


# --- the string ensemble ------------------------------------------------------------------------

string = BUILTINS.ensemble("string", "operations on strings: length, index, range, match, map, is ...")


@string.sub("string length string", "the number of characters")
def string_length(interp: Any, argv: list[str]) -> str:
    return str(len(argv[2]))


@string.sub("string index string charIndex", "the character at an index (`end`, `end-N`), or empty")
def string_index(interp: Any, argv: list[str]) -> str:
    s = argv[2]
    i = index_of(argv[3], len(s))
    return s[i] if 0 <= i < len(s) else ""


@string.sub("string range string first last", "the characters from first to last, inclusive")
def string_range(interp: Any, argv: list[str]) -> str:
    s = argv[2]
    first = max(index_of(argv[3], len(s)), 0)
    last = index_of(argv[4], len(s))
    return s[first:last + 1] if last >= first else ""


@string.sub("string match ?-nocase? pattern string", "1 if the string matches the glob pattern (* ? [a-z] \\x)")
def string_match(interp: Any, argv: list[str]) -> str:
    opts, i = parse_options(argv, 2, {"-nocase": False}, 2, "string match")
    return "1" if glob_match(argv[i], argv[i + 1], bool(opts)) else "0"


# Tcl's default trim set: ASCII blanks, NUL and the Unicode spaces (tclCmdMZ.c DEFAULT_TRIM_SET).
_WHITESPACE = (" \t\n\r\f\v\0\u0085\u00a0\u1680\u180e" + "".join(chr(c) for c in range(0x2000, 0x200c))
               + "\u2028\u2029\u202f\u205f\u3000\ufeff")


@string.sub("string trim string ?chars?", "remove leading and trailing blanks (or these characters)")
def string_trim(interp: Any, argv: list[str]) -> str:
    return argv[2].strip(argv[3] if len(argv) > 3 else _WHITESPACE)


@string.sub("string trimleft string ?chars?", "remove leading blanks (or these characters)")
def string_trimleft(interp: Any, argv: list[str]) -> str:
    return argv[2].lstrip(argv[3] if len(argv) > 3 else _WHITESPACE)


@string.sub("string trimright string ?chars?", "remove trailing blanks (or these characters)")
def string_trimright(interp: Any, argv: list[str]) -> str:
    return argv[2].rstrip(argv[3] if len(argv) > 3 else _WHITESPACE)


def _case_range(argv: list[str], convert: Callable[[str], str]) -> str:
    s = argv[2]
    if len(argv) == 3:
        return convert(s)
    first = max(index_of(argv[3], len(s)), 0)
    last = index_of(argv[4], len(s)) if len(argv) > 4 else first
    if last < first or first >= len(s):
        return s
    return s[:first] + convert(s[first:last + 1]) + s[last + 1:]


def _one_to_one(convert: Callable[[str], str]) -> Callable[[str], str]:
    """A case mapping character by character, as Tcl's: a character whose mapping is several
    characters (`ß` -> `SS`, `ﬁ` -> `FI`) stays as it is, so the length never changes."""

    def mapped(text: str) -> str:
        whole = convert(text)
        if len(whole) == len(text):
            return whole
        out = []
        for c in text:
            m = convert(c)
            out.append(m if len(m) == 1 else c)
        return "".join(out)

    return mapped


_upper, _lower, _title = _one_to_one(str.upper), fold_case, _one_to_one(str.title)


@string.sub("string toupper string ?first? ?last?", "upper case (of the characters first..last)")
def string_toupper(interp: Any, argv: list[str]) -> str:
    return _case_range(argv, _upper)


@string.sub("string tolower string ?first? ?last?", "lower case (of the characters first..last)")
def string_tolower(interp: Any, argv: list[str]) -> str:
    return _case_range(argv, _lower)


@string.sub("string totitle string ?first? ?last?", "first character upper case, the rest lower case")
def string_totitle(interp: Any, argv: list[str]) -> str:
    return _case_range(argv, lambda t: _title(t[:1]) + _lower(t[1:]))


@string.sub("string first needle haystack ?startIndex?", "index of the first occurrence of needle, or -1")
def string_first(interp: Any, argv: list[str]) -> str:
    needle, hay = argv[2], argv[3]
    start = max(index_of(argv[4], len(hay)), 0) if len(argv) > 4 else 0
    if not needle:
        return "-1"
    return str(hay.find(needle, start))


@string.sub("string last needle haystack ?lastIndex?", "index of the last occurrence of needle, or -1")
def string_last(interp: Any, argv: list[str]) -> str:
    needle, hay = argv[2], argv[3]
    if not needle:
        return "-1"
    end = len(hay)
    if len(argv) > 4:
        last = index_of(argv[4], len(hay))
        if last < 0:
            return "-1"
        end = min(last + len(needle), len(hay))
    return str(hay.rfind(needle, 0, end))


@string.sub("string map ?-nocase? mapping string", "replace each key of the mapping list by its value, left to right")
def string_map(interp: Any, argv: list[str]) -> str:
    opts, i = parse_options(argv, 2, {"-nocase": False}, 2, "string map")
    pairs = split_tuple(argv[i])
    if len(pairs) % 2:
        raise ScriptError("char map list unbalanced")
    text = argv[i + 1]
    keys = [(pairs[k], pairs[k + 1]) for k in range(0, len(pairs), 2) if pairs[k]]
    if not keys or not text:
        return text
    nocase = bool(opts)
    if nocase:
        folded = fold_case(text)
        keys = [(fold_case(k), v) for k, v in keys]
    else:
        folded = text
    out: list[str] = []
    i, n, plain = 0, len(text), 0
    firsts = {k[0] for k, _ in keys}
    longest = max(len(v) for _, v in keys)
    if longest > 1 and n * longest > MAX_STRING:  # only a bound: check the real size as we go
        return _string_map_checked(text, folded, keys)
    while i < n:
        if folded[i] in firsts:
            for key, value in keys:  # the first key of the mapping that matches here wins
                if folded.startswith(key, i):
                    out.append(text[plain:i])
                    out.append(value)
                    i += len(key)
                    plain = i
                    break
            else:
                i += 1
        else:
            i += 1
    out.append(text[plain:])
    return "".join(out)


def _string_map_checked(text: str, folded: str, keys: list[tuple[str, str]]) -> str:
    out: list[str] = []
    size = 0
    i, n = 0, len(text)
    while i < n:
        for key, value in keys:
            if folded.startswith(key, i):
                out.append(value)
                size += len(value)
                i += len(key)
                break
        else:
            out.append(text[i])
            size += 1
            i += 1
        if size > MAX_STRING:
            _check_size(size, "string map")
    return "".join(out)


@string.sub("string repeat string count", "the string repeated count times")
def string_repeat(interp: Any, argv: list[str]) -> str:
    count = get_int(argv[3])
    if count <= 0:
        return ""
    _check_size(len(argv[2]) * count, "string repeat")
    return argv[2] * count


def _compare_args(argv: list[str], name: str) -> tuple[str, str, bool, int | None]:
    opts, i = parse_options(argv, 2, {"-nocase": False, "-length": True}, 2, name)
    if len(argv) - i != 2:
        raise ScriptError(f'wrong # args: should be "{name} ?-nocase? ?-length int? string1 string2"')
    a, b = argv[i], argv[i + 1]
    length = get_int(str(opts["-length"])) if "-length" in opts else None
    if length is not None and length >= 0:
        a, b = a[:length], b[:length]
    if opts.get("-nocase"):
        a, b = fold_case(a), fold_case(b)
    return a, b, bool(opts.get("-nocase")), length


@string.sub("string compare ?-nocase? ?-length int? string1 string2", "-1, 0 or 1 as string1 sorts before, same as, after string2")
def string_compare(interp: Any, argv: list[str]) -> str:
    a, b, _, _ = _compare_args(argv, "string compare")
    return "0" if a == b else ("-1" if a < b else "1")


@string.sub("string equal ?-nocase? ?-length int? string1 string2", "1 if the strings are equal")
def string_equal(interp: Any, argv: list[str]) -> str:
    a, b, _, _ = _compare_args(argv, "string equal")
    return "1" if a == b else "0"


@string.sub("string reverse string", "the characters in reverse order")
def string_reverse(interp: Any, argv: list[str]) -> str:
    return argv[2][::-1]


@string.sub("string replace string first last ?newstring?", "replace (or delete) the characters first..last")
def string_replace(interp: Any, argv: list[str]) -> str:
    s = argv[2]
    first = max(index_of(argv[3], len(s)), 0)
    last = index_of(argv[4], len(s))
    if last < first or first >= len(s):
        return s
    return s[:first] + (argv[5] if len(argv) > 5 else "") + s[last + 1:]


def _word_char(c: str) -> bool:
    return _CHAR_CLASSES["wordchar"](c)  # (Tcl's wordchar: letters, Nd digits, connectors)


@string.sub("string wordend string charIndex", "the index just past the word that holds the character at charIndex")
def string_wordend(interp: Any, argv: list[str]) -> str:
    s = argv[2]
    k = index_of(argv[3], len(s))
    if k < 0:
        k = 0
    if k >= len(s):
        return str(len(s))
    if not _word_char(s[k]):
        return str(k + 1)
    while k < len(s) and _word_char(s[k]):
        k += 1
    return str(k)


@string.sub("string wordstart string charIndex", "the index of the first character of the word that holds charIndex")
def string_wordstart(interp: Any, argv: list[str]) -> str:
    s = argv[2]
    k = index_of(argv[3], len(s))
    if k >= len(s):
        k = len(s) - 1
    if k <= 0:
        return "0"
    if not _word_char(s[k]):
        return str(k)
    while k > 0 and _word_char(s[k - 1]):
        k -= 1
    return str(k)


@string.sub("string cat ?string ...?", "the strings joined together")
def string_cat(interp: Any, argv: list[str]) -> str:
    return "".join(argv[2:])


# string is CLASS: each class is a test of one character, or of the whole string.
_INT_RE = lazy_compile(r"\s*[+-]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)\s*\Z")
# The longest number at the start of a string, for -failindex (Tcl reports where parsing stopped).
_INT_PREFIX = lazy_compile(r"\s*[+-]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)\s*")
_DOUBLE_PREFIX = lazy_compile(r"\s*[+-]?(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)\s*", re.I)


def _is_int(s: str) -> bool:
    return _INT_RE.match(s) is not None


def _within(s: str, limit: int) -> bool:
    return _is_int(s) and abs(int(parse_number(s))) <= limit  # type: ignore[arg-type]


def _is_integer(s: str) -> bool:
    """Tcl 8.6's `string is integer`: what Tcl_GetIntFromObj takes, magnitudes up to 2**32-1."""
    return _within(s, (1 << 32) - 1)


def _is_wide(s: str) -> bool:
    """`string is wideinteger`: magnitudes up to 2**64-1, as Tcl_GetWideIntFromObj takes them."""
    return _within(s, (1 << 64) - 1)


def _is_double(s: str) -> bool:
    return parse_number(s) is not None


def _fail_index(cls: str, s: str) -> int:
    """Where Tcl says a number class failed: after the longest number at the start (and its
    trailing blanks), 0 when there is none, -1 when the whole string is a number out of range."""
    m = (_DOUBLE_PREFIX if cls == "double" else _INT_PREFIX).match(s)
    end = m.end() if m else 0
    return -1 if end == len(s) else end


def _is_list(s: str) -> bool:
    return _list_fail_index(s) < 0


def _list_fail_index(s: str) -> int:
    """Where the element that makes a string no list starts (-1: it is a list)."""
    try:
        split_tuple(s)
    except ListError as err:
        return err.element if err.element is not None else 0
    return -1


_ASCII_PUNCT = frozenset("!\"#%&'()*,-./:;?@[\\]_{}")
"""Unicode's punctuation (categories P*) among the ASCII characters: `$+<=>^`|~` are symbols."""


def _is_punct(c: str) -> bool:
    """Tcl's `string is punct`: Unicode's punctuation categories, not its symbols."""
    return c in _ASCII_PUNCT if c < "\x80" else _category(c)[0] == "P"


def _prefixes(*words: str) -> set[str]:
    return {w[:k] for w in words for k in range(1, len(w) + 1)}


_TRUE_TEXTS = _prefixes("true", "yes") | {"on"}
_FALSE_TEXTS = _prefixes("false", "no") | {"of", "off"}  # "o" alone could be on or off


def _is_true(s: str) -> bool:
    return s == "1" or s.lower() in _TRUE_TEXTS


def _is_false(s: str) -> bool:
    return s == "0" or s.lower() in _FALSE_TEXTS


_WHOLE_CLASSES: dict[str, Callable[[str], bool]] = {
    "boolean": lambda s: _is_true(s) or _is_false(s),
    "true": _is_true,
    "false": _is_false,
    "integer": _is_integer,
    "entier": _is_int,
    "wideinteger": _is_wide,
    "double": _is_double,
    "list": _is_list,
}

def _category(c: str) -> str:
    """The Unicode category of a character beyond ASCII (Tcl's classes are defined by them)."""
    import unicodedata  # (only for text beyond ASCII: start-up)

    return unicodedata.category(c)


def _is_space(c: str) -> bool:
    """Tcl's space: the six ASCII blanks, the separators (Z*), and five invisible characters."""
    if c < "\x80":
        return c in " \t\n\v\f\r"
    return c in "\x85\u180e\u200b\u2060\u202f\ufeff" or _category(c)[0] == "Z"


def _is_graph(c: str) -> bool:
    return c.isprintable() and not c.isspace()


_CHAR_CLASSES: dict[str, Callable[[str], bool]] = {
    # As Tcl 8.6 defines them by Unicode category: digit is Nd only (not ², nor Roman numerals),
    # upper and lower are Lu and Ll, control is Cc, Cf and Co.
    "alnum": lambda c: c.isalpha() or c.isdecimal(),
    "alpha": str.isalpha,
    "ascii": lambda c: ord(c) < 128,
    "control": lambda c: ord(c) < 32 or 127 <= ord(c) < 160 or (c >= "\xa0" and _category(c) in ("Cf", "Co")),
    "digit": str.isdecimal,
    "graph": _is_graph,
    "lower": lambda c: "a" <= c <= "z" if c < "\x80" else _category(c) == "Ll",
    "print": lambda c: _is_graph(c) or c == " " or (c >= "\x80" and _category(c)[0] == "Z"),
    "punct": _is_punct,
    "space": _is_space,
    "upper": lambda c: "A" <= c <= "Z" if c < "\x80" else _category(c) == "Lu",
    "wordchar": lambda c: c.isalpha() or c.isdecimal() or c == "_" or (c >= "\x80" and _category(c) == "Pc"),
    "xdigit": lambda c: c in "0123456789abcdefABCDEF",
}


_CLASS_LISTING = ("alnum, alpha, ascii, control, boolean, digit, double, entier, false, graph, integer, list, lower, "
                  "print, punct, space, true, upper, wideinteger, wordchar, or xdigit")
"""The classes in the order of Tcl's message."""


@string.sub("string is class ?-strict? ?-failindex varName? string",
            "1 if the string is of a class: int double integer boolean alpha alnum digit space lower upper list ...")
def string_is(interp: Any, argv: list[str]) -> str:
    classes = sorted(set(_WHOLE_CLASSES) | set(_CHAR_CLASSES))
    word = argv[2]
    matches = [c for c in classes if c.startswith(word)] if word else []
    if word in classes:
        matches = [word]
    if len(matches) != 1:
        raise ScriptError(f'{"ambiguous" if matches else "bad"} class "{word}": must be {_CLASS_LISTING}')
    cls = matches[0]
    opts, i = parse_options(argv, 3, {"-strict": False, "-failindex": True}, 1, "string is")
    if len(argv) - i != 1:
        raise ScriptError('wrong # args: should be "string is class ?-strict? ?-failindex var? str"')
    s = argv[i]
    if not s:
        return "0" if opts.get("-strict") else "1"
    whole = _WHOLE_CLASSES.get(cls)
    if whole is not None:
        ok = whole(s)
        fail_at = (-1 if ok else _fail_index(cls, s) if cls in ("integer", "entier", "wideinteger", "double")
                   else _list_fail_index(s) if cls == "list" else 0)
    else:
        test = _CHAR_CLASSES[cls]
        fail_at = next((k for k, c in enumerate(s) if not test(c)), -1)
        ok = fail_at < 0
    if not ok and "-failindex" in opts:
        interp.set_var(str(opts["-failindex"]), str(fail_at))
    return "1" if ok else "0"


set_arity(string.table["is"], 5)
set_arity(string.table["compare"], 5)
set_arity(string.table["equal"], 5)


# --- format -------------------------------------------------------------------------------------

_SPEC_RE = lazy_compile(r"%(?:(\d+)\$)?([-+ 0#]*)(\*|\d+)?(?:\.(\*|\d*))?(h|ll|l)?(.?)", re.S)
_CONVERSIONS = set("diuoxXbcsfFeEgG%")


class _Args:
    """The arguments of `format`, taken in order or by XPG3 position (`%2$s`)."""

    def __init__(self, values: list[str]):
        self.values = values
        self.next = 0

    def take(self, position: str | None) -> str:
        if position is not None:
            k = int(position) - 1
            if not 0 <= k < len(self.values):
                raise ScriptError('"%n$" argument index out of range')
            return self.values[k]
        if self.next >= len(self.values):
            raise ScriptError("not enough arguments for all format specifiers")
        self.next += 1
        return self.values[self.next - 1]


def tcl_format(fmt: str, values: list[str]) -> str:
    """Tcl's `format`: %d %i %u %o %x %X %b %c %s %f %e %E %g %G %%, flags -+ 0#, widths, precision, `*`."""
    args = _Args(values)
    out: list[str] = []
    i, n = 0, len(fmt)
    positional: bool | None = None
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        m = _SPEC_RE.match(fmt, j)
        position, flags, width, precision, size, conv = m.groups()
        i = m.end()
        if conv == "%" and not (position or flags or width or precision is not None or size):
            out.append("%")
            continue
        uses_position = position is not None
        if positional is None:
            positional = uses_position
        elif positional != uses_position:
            raise ScriptError('cannot mix "%" and "%n$" conversion specifiers')
        if width == "*":
            w = get_int(args.take(None))
            if w < 0:
                flags += "-"
                w = -w
            width = str(w)
        if precision == "*":
            precision = str(max(get_int(args.take(None)), 0))
        elif precision == "":
            precision = "0"
        if (width and int(width) > MAX_FIELD) or (precision and int(precision) > MAX_FIELD):
            raise ScriptError(f"format: field width or precision larger than {MAX_FIELD}")
        value = args.take(position)  # before the conversion is checked, as Tcl does
        if not conv:
            raise ScriptError("format string ended in middle of field specifier")
        if conv not in _CONVERSIONS or conv == "%":
            raise ScriptError(f'bad field specifier "{conv}"')
        out.append(_format_one(conv, flags, width or "", precision, size or "", value))
    return "".join(out)


def _format_one(conv: str, flags: str, width: str, precision: str | None, size: str, value: str) -> str:
    if conv == "s":
        return _pad(value if precision is None else value[:int(precision)], flags, width)
    if conv == "c":
        code = get_int(value)
        if not 0 <= code <= 0x10FFFF:
            raise ScriptError(f'format: character code {code} out of range')
        return _pad(chr(code), flags, width)
    if conv in "diuoxXb":
        number = get_int(value)
        if conv in "di" and size != "ll":  # Tcl's %d is 64 bits unless `ll`, 16 with `h`
            bits = 16 if size == "h" else 64
            number = ((number + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))
        elif conv not in "di" and size != "ll":
            number &= (1 << (16 if size == "h" else 64)) - 1
        return _format_integer(conv, flags, width, precision, number)
    prec = f".{precision}" if precision is not None else ""
    number_f = get_float(value)
    return f"%{flags}{width}{prec}{conv}" % number_f


def _pad(text: str, flags: str, width: str) -> str:
    """A string field padded to its width: with zeros under the 0 flag (Tcl's rule for %s and %c
    too), on the right under the - flag."""
    fill = "0" if "0" in flags else " "
    w = int(width) if width else 0
    return text.ljust(w, fill) if "-" in flags else text.rjust(w, fill)


def _format_integer(conv: str, flags: str, width: str, precision: str | None, number: int) -> str:
    """Tcl's integer fields: the 0 flag without a precision pads with zeros to the width even
    under the - flag; with a precision the digits are padded to it and the field with blanks;
    `%#x` of 0 is 0x0."""
    sign = "-" if number < 0 else ""
    if not sign and conv in "di":
        sign = "+" if "+" in flags else " " if " " in flags else ""
    number = abs(number)
    digits = {"d": "%d", "i": "%d", "u": "%d", "o": "%o", "x": "%x", "X": "%X"}.get(conv)
    body = digits % number if digits else format(number, "b")
    if precision is not None:
        body = body.rjust(int(precision), "0")
    prefix = ""
    if "#" in flags:
        if conv == "o" and not body.startswith("0"):
            body = "0" + body
        elif conv in "xX":
            prefix = "0" + conv
        elif conv == "b":
            prefix = "0b"
    w = int(width) if width else 0
    if "0" in flags and precision is None:
        return sign + prefix + body.rjust(w - len(sign) - len(prefix), "0")
    if "-" in flags:
        return (sign + prefix + body).ljust(w)
    return (sign + prefix + body).rjust(w)


@BUILTINS.command("format formatString ?arg ...?", "format like C's printf: %d %s %f %x %o %c %e %g %%, widths, flags, %*d")
def cmd_format(interp: Any, argv: list[str]) -> str:
    return tcl_format(argv[1], argv[2:])


# --- regular expressions ------------------------------------------------------------------------

_REGEXP_OPTIONS = {"-nocase": False, "-all": False, "-inline": False, "-indices": False, "-line": False,
                   "-linestop": False, "-lineanchor": False, "-expanded": False, "-start": True, "-about": False}


def _compile_from(opts: dict, pattern: str) -> Pattern:
    line = bool(opts.get("-line"))
    return tcl_regex(pattern, bool(opts.get("-nocase")), line or bool(opts.get("-linestop")),
                     line or bool(opts.get("-lineanchor")), bool(opts.get("-expanded")))


def _regexp_options(argv: list[str], name: str, positional: int) -> tuple[dict, int]:
    spec = _REGEXP_OPTIONS if name == "regexp" else {k: v for k, v in _REGEXP_OPTIONS.items()
                                                      if k not in ("-inline", "-indices", "-about")}
    return parse_options(argv, 1, spec, positional, name)


def _match_spans(interp: Any, rx: Pattern, s: str, start: int, every: bool) -> list[Match]:
    """Matches as Tcl's `regexp -all` finds them: after an empty match, search on from the next character."""
    found: list[Match] = []
    offset = start
    while offset <= len(s):
        m = regex_search(interp, rx, s, offset)
        if m is None:
            break
        found.append(m)
        if not every:
            break
        offset = m.end() + (1 if m.end() == m.start() else 0)
        if offset >= len(s):
            break
    return found


@BUILTINS.command("regexp ?-nocase|-all|-inline|-indices|-line|-linestop|-lineanchor|-expanded|-start ...? exp string ?matchVar? ?subMatchVar ...?",
                  "match a regular expression; 1/0 (the count with -all), or the matches with -inline")
def cmd_regexp(interp: Any, argv: list[str]) -> str:
    opts, i = _regexp_options(argv, "regexp", 2)
    if len(argv) - i < 2:
        raise ScriptError('wrong # args: should be "regexp ?-option ...? exp string ?matchVar? ?subMatchVar ...?"')
    if opts.get("-about"):
        raise ScriptError("regexp: -about is not supported")
    rx = _compile_from(opts, argv[i])
    s = argv[i + 1]
    names = argv[i + 2:]
    inline, indices = bool(opts.get("-inline")), bool(opts.get("-indices"))
    if inline and names:
        raise ScriptError("regexp match variables not allowed when using -inline")
    start = 0
    if "-start" in opts:
        start = min(max(index_of(str(opts["-start"]), len(s) + 1), 0), len(s))  # `end` is past the last character, as in Tcl
    matches = _match_spans(interp, rx, s, start, bool(opts.get("-all")))
    if inline:
        items: list[str] = []
        for m in matches:
            items.extend(_group_texts(m, rx.groups + 1, indices))
        return join_list(items)
    if matches and names:
        values = _group_texts(matches[-1], len(names), indices)
        for name, value in zip(names, values):
            interp.set_var(name, value)
    return str(len(matches))


def _group_texts(m: Match, count: int, indices: bool) -> list[str]:
    out = []
    for g in range(count):
        if g > m.re.groups:
            out.append("-1 -1" if indices else "")
            continue
        if indices:
            a, b = m.span(g)
            out.append(f"{a} {b - 1}" if a >= 0 else "-1 -1")
        else:
            text = m.group(g)
            out.append(text if text is not None else "")
    return out


@lru_cache(maxsize=256)
def _subspec(spec: str) -> tuple[str | int, ...]:
    """Tcl's regsub replacement: `&` and `\\0` the match, `\\1`..`\\9` groups, `\\&` `\\\\` literal."""
    pieces: list[str | int] = []
    text: list[str] = []
    i, n = 0, len(spec)
    while i < n:
        c = spec[i]
        if c == "&":
            pieces.append("".join(text))
            text = []
            pieces.append(0)
        elif c == "\\" and i + 1 < n and (spec[i + 1].isdigit() or spec[i + 1] in "&\\"):
            i += 1
            if spec[i].isdigit():
                pieces.append("".join(text))
                text = []
                pieces.append(int(spec[i]))
            else:
                text.append(spec[i])
        else:
            text.append(c)
        i += 1
    pieces.append("".join(text))
    return tuple(p for p in pieces if p != "")


def _empty_literal_matches(s: str, start: int) -> list[Match]:
    """Tcl's `regsub -all {} STRING ...` inserts before each character but not at the end (its
    literal-pattern shortcut), where a regular expression also matches at the end."""
    empty = tcl_regex("")
    return [empty.match(s, k) for k in range(start, len(s))]


@BUILTINS.command("regsub ?-all|-nocase|-line|-linestop|-lineanchor|-expanded|-start ...? exp string subSpec ?varName?",
                  "replace matches of a regular expression (& and \\1 in subSpec); the result, or the count with varName")
def cmd_regsub(interp: Any, argv: list[str]) -> str:
    opts, i = _regexp_options(argv, "regsub", 3)
    rest = argv[i:]
    if len(rest) not in (3, 4):
        raise ScriptError('wrong # args: should be "regsub ?-option ...? exp string subSpec ?varName?"')
    rx = _compile_from(opts, rest[0])
    s, pieces = rest[1], _subspec(rest[2])
    start = 0
    if "-start" in opts:
        start = min(max(index_of(str(opts["-start"]), len(s) + 1), 0), len(s))  # `end` is past the last character, as in Tcl
    out = [s[:start]]
    last = start
    count = 0
    size = start
    every = bool(opts.get("-all"))
    matches = _empty_literal_matches(s, start) if every and rest[0] == "" else regex_finditer(interp, rx, s, start)
    for m in matches:
        out.append(s[last:m.start()])
        for piece in pieces:
            if type(piece) is int:
                text = m.group(piece) if piece <= rx.groups else ""
                out.append(text or "")
                size += len(text or "")
            else:
                out.append(piece)  # type: ignore[arg-type]
                size += len(piece)  # type: ignore[arg-type]
        if size > MAX_STRING:
            _check_size(size, "regsub")
        last = m.end()
        count += 1
        if not every:
            break
    out.append(s[last:])
    result = "".join(out)
    if len(rest) == 4:
        interp.set_var(rest[3], result)
        return str(count)
    return result
