"""List commands: list llength lindex lrange lappend lsearch lsort join split concat lreverse
linsert lreplace lset lassign lrepeat lmap.

A list is a string read by Tcl's rules (psched.lang.tcllist); every command here reads its list
arguments with `split_tuple` (cached) and writes its result with `join_list`, so results are
canonical Tcl lists. Indexes are Tcl's (`3`, `end`, `end-1`, `1+2`), see
psched.lang.args.index_of.

`lappend` reads the variable's current value as a list once and writes it back in canonical
form, as Tcl does; then it grows the text at its end in place (psched.lang.interp.Growing), so
a loop of appends to one variable is linear and never re-reads the list. An array element
holds a string (an array hands its values out as they are): `lappend` to a long one, and `lset`
of one element of a long list, keep the list's elements beside its text
(psched.lang.tcllist.EDITED), so each call copies the text once and neither reads nor quotes
the whole list again.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

from ..lazyre import lazy_compile
from ..errors import Break, Continue, ScriptError
from ..registry import BUILTINS
from ..tcllist import EDITED, join_list, list_tail, quote_element, split_list, split_tuple
from ..args import MAX_STRING, get_float, get_int, index_of, parse_options
from ..patterns import fold_case, glob_regex
from ..tclregex import regex_search, tcl_regex


__all__ = ["dictionary_compare", "lindex_path"]

cmd = BUILTINS.command


def _elements(text: str) -> tuple[str, ...]:
    """The elements of a list argument (ListError, a SchedError, when it is not a list)."""
    return split_tuple(text)


@cmd("list ?value ...?", "make a list of the words")
def cmd_list(interp: Any, argv: list[str]) -> str:
    return join_list(argv[1:])


@cmd("llength list", "the number of elements of a list")
def cmd_llength(interp: Any, argv: list[str]) -> str:
    return str(len(_elements(argv[1])))


def lindex_path(value: str, indexes: list[str]) -> str:
    """The element found by following indexes into nested lists; empty when out of range."""
    for index in indexes:
        items = _elements(value)
        k = index_of(index, len(items))
        if not 0 <= k < len(items):
            return ""
        value = items[k]
    return value


@cmd("lindex list ?index ...?", "the element at an index (several indexes reach into nested lists)")
def cmd_lindex(interp: Any, argv: list[str]) -> str:
    if len(argv) == 2:
        return argv[1]
    if len(argv) == 3 and argv[2].isdigit() and argv[2].isascii() and len(argv[2]) < 16:  # `lindex $list 3`
        items = _elements(argv[1])
        k = int(argv[2])
        return items[k] if k < len(items) else ""
    indexes = argv[2:]
    if len(indexes) == 1 and not _is_simple_index(indexes[0]):
        indexes = split_list(indexes[0])  # `lindex $l {1 2}` means `lindex $l 1 2`
    return lindex_path(argv[1], indexes)


_SIMPLE_INDEX = lazy_compile(r"\s*(end|[+-]?\w+)([+-]\w+)?\s*\Z")


def _is_simple_index(text: str) -> bool:
    return _SIMPLE_INDEX.match(text) is not None


@cmd("lrange list first last", "the elements from first to last, inclusive")
def cmd_lrange(interp: Any, argv: list[str]) -> str:
    items = _elements(argv[1])
    first = max(index_of(argv[2], len(items)), 0)
    last = index_of(argv[3], len(items))
    return join_list(items[first:last + 1]) if last >= first else ""


@cmd("lappend varName ?value ...?", "append elements to the list in a variable (created if missing)")
def cmd_lappend(interp: Any, argv: list[str]) -> str:
    name = argv[1]
    grow = interp.growing(name)
    if grow is None:  # an array element: read, extend, set whole (a long list kept in EDITED)
        current = interp.get_var(name) if interp.var_exists(name) else ""
        new = EDITED.appended(current, argv[2:])
        if len(new) > MAX_STRING:
            raise ScriptError(f"lappend: list would be longer than {MAX_STRING} characters")
        return interp.set_var(name, new)
    if not grow.is_list:  # read once as a list (an error leaves it as it was), written canonical as Tcl does
        grow.text = join_list(split_tuple(grow.text)) if grow.text else ""
        grow.is_list = True
    if len(argv) == 2:
        return grow.text
    tail = list_tail(grow.text, argv[2:])
    _check_length(grow.text, tail)
    return grow.add(tail)


def _check_length(current: str, tail: str) -> None:
    if len(current) + len(tail) > MAX_STRING:
        raise ScriptError(f"lappend: list would be longer than {MAX_STRING} characters")


@cmd("lassign list ?varName ...?", "set variables to the first elements; return the elements left over")
def cmd_lassign(interp: Any, argv: list[str]) -> str:
    items = _elements(argv[1])
    names = argv[2:]
    for k, name in enumerate(names):
        interp.set_var(name, items[k] if k < len(items) else "")
    return join_list(items[len(names):])


@cmd("lrepeat count ?value ...?", "a list of the values repeated count times")
def cmd_lrepeat(interp: Any, argv: list[str]) -> str:
    count = get_int(argv[1])
    if count < 0:
        raise ScriptError(f'bad count "{argv[1]}": must be integer >= 0')
    one = join_list(argv[2:])
    if (len(one) + 1) * count > MAX_STRING:
        raise ScriptError(f"lrepeat: list would be longer than {MAX_STRING} characters")
    return " ".join([one] * count) if one else ""


@cmd("lreverse list", "the elements in reverse order")
def cmd_lreverse(interp: Any, argv: list[str]) -> str:
    return join_list(reversed(_elements(argv[1])))


@cmd("linsert list index ?element ...?", "insert elements before an index (`end` appends)")
def cmd_linsert(interp: Any, argv: list[str]) -> str:
    items = list(_elements(argv[1]))
    k = index_of(argv[2], len(items))
    if argv[2].strip().startswith("end"):
        k += 1  # `end` is after the last element, `end-1` before it
    k = min(max(k, 0), len(items))
    items[k:k] = argv[3:]
    return join_list(items)


@cmd("lreplace list first last ?element ...?", "replace the elements first..last by the given ones (or delete them)")
def cmd_lreplace(interp: Any, argv: list[str]) -> str:
    items = list(_elements(argv[1]))
    first = min(max(index_of(argv[2], len(items)), 0), len(items))
    last = index_of(argv[3], len(items))
    stop = max(last + 1, first)
    items[first:stop] = argv[4:]
    return join_list(items)


@cmd("lset varName ?index ...? newValue", "set the element at an index (or path of indexes) of a list variable")
def cmd_lset(interp: Any, argv: list[str]) -> str:
    name, indexes, value = argv[1], argv[2:-1], argv[-1]
    if len(indexes) == 1 and not _is_simple_index(indexes[0]):
        indexes = split_list(indexes[0])
    if not indexes:
        return interp.set_var(name, value)
    current = interp.get_var(name)
    if len(indexes) == 1 and len(current) >= EDITED.MIN_CHARS:
        return interp.set_var(name, _lset_long(current, indexes[0], value))
    return interp.set_var(name, _lset(current, indexes, value))


def _lset_long(current: str, index: str, value: str) -> str:
    """`lset` of one element of a long list: kept in EDITED, so the list is neither read nor
    quoted again, only its text joined anew."""
    items, parts, canonical = EDITED.take(current)
    try:
        k = index_of(index, len(items))
    except ScriptError:
        if canonical:
            EDITED.keep(current, items, parts)
        raise
    if not 0 <= k <= len(items):
        if canonical:
            EDITED.keep(current, items, parts)
        raise ScriptError("list index out of range")
    part = quote_element(value, quote_hash=k == 0)
    if k == len(items):
        items.append(value)
        parts.append(part)
    else:
        items[k] = value
        parts[k] = part
    new = " ".join(parts)
    EDITED.keep(new, items, parts)
    return new


def _lset(current: str, indexes: list[str], value: str) -> str:
    items = list(_elements(current))
    k = index_of(indexes[0], len(items))
    if not 0 <= k <= len(items) or (k == len(items) and len(indexes) > 1):
        raise ScriptError("list index out of range")
    new = value if len(indexes) == 1 else _lset(items[k], indexes[1:], value)
    if k == len(items):
        items.append(new)
    else:
        items[k] = new
    return join_list(items)


@cmd("concat ?arg ...?", "join the arguments with spaces, trimming blanks around each")
def cmd_concat(interp: Any, argv: list[str]) -> str:
    return " ".join(t for t in (a.strip(" \t\n\r\f\v") for a in argv[1:]) if t)


@cmd("join list ?joinString?", "the elements of a list joined by a string (a space by default)")
def cmd_join(interp: Any, argv: list[str]) -> str:
    items = _elements(argv[1])
    sep = argv[2] if len(argv) > 2 else " "
    if len(sep) > 1 and len(sep) * len(items) > MAX_STRING:
        raise ScriptError(f"join: result would be longer than {MAX_STRING} characters")
    return sep.join(items)


@cmd("split string ?splitChars?", "a list of the pieces between any of the split characters (blanks by default)")
def cmd_split(interp: Any, argv: list[str]) -> str:
    text = argv[1]
    chars = argv[2] if len(argv) > 2 else " \t\n\r"
    if not text:
        return ""
    if not chars:
        return join_list(text)
    if len(chars) == 1:
        return join_list(text.split(chars))
    return join_list(re.split("[" + "".join("\\" + c if c in "\\]^-[" else c for c in chars) + "]", text))


# --- lsearch ------------------------------------------------------------------------------------

_LSEARCH_OPTIONS = {"-exact": False, "-glob": False, "-regexp": False, "-sorted": False, "-all": False,
                    "-inline": False, "-not": False, "-nocase": False, "-start": True, "-index": True,
                    "-integer": False, "-real": False, "-ascii": False, "-dictionary": False,
                    "-increasing": False, "-decreasing": False, "-bisect": False, "-subindices": False}
_ANY_LENGTH = 1 << 62


def _index_path(text: str) -> list[str]:
    """The indexes of an -index option; one that can select no element of any list (`-1`,
    `end+1`) is refused, as in Tcl."""
    path = split_list(text)
    for index in path:
        if not 0 <= index_of(index, _ANY_LENGTH) < _ANY_LENGTH:
            raise ScriptError(f'index "{index}" cannot select an element from any list')
    return path


def _matcher(interp: Any, opts: dict, pattern: str) -> Callable[[str], bool]:
    nocase = bool(opts.get("-nocase"))
    if opts.get("-regexp"):
        rx = tcl_regex(pattern, nocase)
        return lambda s: regex_search(interp, rx, s) is not None
    if opts.get("-exact") or opts.get("-sorted"):
        if opts.get("-integer"):
            want_i = get_int(pattern)
            return lambda s: get_int(s) == want_i
        if opts.get("-real"):
            want_f = get_float(pattern)
            return lambda s: get_float(s) == want_f
        if nocase:
            folded = fold_case(pattern)
            return lambda s: fold_case(s) == folded
        return lambda s: s == pattern
    if pattern == "*":
        return lambda s: True
    grx = glob_regex(pattern, nocase)
    return lambda s: grx.match(s) is not None


@cmd("lsearch ?-exact|-glob|-regexp|-sorted|-bisect|-all|-inline|-not|-nocase|-start|-index|-subindices|-integer|-real ...? list pattern",
     "index of the first element matching a pattern (-glob by default), or -1; -all for every one, -inline for the elements")
def cmd_lsearch(interp: Any, argv: list[str]) -> str:
    opts, i = parse_options(argv, 1, _LSEARCH_OPTIONS, 2, "lsearch")
    if len(argv) - i != 2:
        raise ScriptError('wrong # args: should be "lsearch ?-option value ...? list pattern"')
    every, inline, negate = bool(opts.get("-all")), bool(opts.get("-inline")), bool(opts.get("-not"))
    if opts.get("-bisect") and (every or negate):
        raise ScriptError("-bisect is not compatible with -all or -not")
    index_path = _index_path(str(opts["-index"])) if "-index" in opts else None
    if opts.get("-subindices") and index_path is None:
        raise ScriptError("-subindices cannot be used without -index option")
    items = _elements(argv[i])
    start = max(index_of(str(opts["-start"]), len(items)), 0) if "-start" in opts else 0
    pick: Callable[[str], str] = (lambda s: _sub_element(s, index_path)) if index_path else (lambda s: s)
    hits: list[int] = []
    if opts.get("-bisect"):
        k = _bisect(items, argv[i + 1], pick, _compare_function(opts), bool(opts.get("-decreasing")), start)
        hits = [k] if k >= 0 else []
    else:
        match = _matcher(interp, opts, argv[i + 1])
        for k in range(start, len(items)):
            if match(pick(items[k])) != negate:
                hits.append(k)
                if not every:
                    break
    if inline:
        if every:  # Tcl gives the element found by the path with -subindices, only under -all
            return join_list(pick(items[k]) if opts.get("-subindices") else items[k] for k in hits)
        return items[hits[0]] if hits else ""
    found = [_found_path(items[k], k, index_path) for k in hits] if opts.get("-subindices") else [str(k) for k in hits]
    if every:
        return join_list(found) if opts.get("-subindices") else " ".join(found)
    return found[0] if found else "-1"


def _found_path(item: str, k: int, path: list[str]) -> str:
    """The full path of indexes (for lindex and lset) to what -index found in element k."""
    resolved = [str(k)]
    value = item
    for index in path:
        parts = _elements(value)
        resolved.append(str(index_of(index, len(parts))))
        value = parts[int(resolved[-1])]
    return join_list(resolved)


def _bisect(items: tuple[str, ...], pattern: str, pick: Callable[[str], str], compare: Callable[[str, str], int],
            decreasing: bool, start: int) -> int:
    """The last index (from start) whose element comes before the pattern or equals it in
    the list's order, or -1: a binary search, as the list is sorted."""
    found, lo, hi = -1, start, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        order = compare(pick(items[mid]), pattern)
        if (-order if decreasing else order) <= 0:
            found, lo = mid, mid + 1
        else:
            hi = mid - 1
    return found


def _compare_function(opts: dict) -> Callable[[str, str], int]:
    """The comparison the sort options name (lsearch -bisect)."""
    if opts.get("-integer") or opts.get("-real"):
        number: Callable[[str], Any] = get_int if opts.get("-integer") else get_float
        return lambda a, b: (number(a) > number(b)) - (number(a) < number(b))
    if opts.get("-dictionary"):
        return dictionary_compare
    fold: Callable[[str], str] = fold_case if opts.get("-nocase") else str
    return lambda a, b: (fold(a) > fold(b)) - (fold(a) < fold(b))


def _sub_element(item: str, path: list[str]) -> str:
    value = item
    for index in path:
        parts = _elements(value)
        k = index_of(index, len(parts))
        if not 0 <= k < len(parts):
            raise ScriptError(f'element {index} missing from sublist "{item}"')
        value = parts[k]
    return value


# --- lsort --------------------------------------------------------------------------------------


def dictionary_compare(left: str, right: str) -> int:
    """Tcl's `lsort -dictionary` order: case folded, embedded numbers compared as numbers.

    Case, then leading zeros, only break ties (a port of Tcl's DictionaryCompare).
    """
    i = j = 0
    nl, nr = len(left), len(right)
    secondary = 0
    while True:
        if i < nl and j < nr and left[i].isdigit() and right[j].isdigit() and left[i].isascii() and right[j].isascii():
            zeros = 0
            while j + 1 < nr and right[j] == "0" and right[j + 1].isdigit():
                j += 1
                zeros -= 1
            while i + 1 < nl and left[i] == "0" and left[i + 1].isdigit():
                i += 1
                zeros += 1
            if secondary == 0:
                secondary = zeros
            a = i
            while i < nl and left[i].isdigit() and left[i].isascii():
                i += 1
            b = j
            while j < nr and right[j].isdigit() and right[j].isascii():
                j += 1
            da, db = left[a:i], right[b:j]
            if len(da) != len(db):
                return 1 if len(da) > len(db) else -1
            if da != db:
                return 1 if da > db else -1
            continue
        if i >= nl or j >= nr:
            diff = (nl - i) - (nr - j)
            if diff == 0:
                return secondary
            return 1 if diff > 0 else -1
        cl, cr = left[i], right[j]
        i += 1
        j += 1
        ll, lr = fold_case(cl), fold_case(cr)
        if ll != lr:
            return -1 if ll < lr else 1
        if secondary == 0:
            if cl.isupper() and cr.islower():
                secondary = -1
            elif cr.isupper() and cl.islower():
                secondary = 1


_LSORT_OPTIONS = {"-ascii": False, "-dictionary": False, "-integer": False, "-real": False, "-increasing": False,
                  "-decreasing": False, "-unique": False, "-index": True, "-nocase": False, "-command": True,
                  "-stride": True, "-indices": False}


def _sort_key(opts: dict, interp: Any) -> tuple[Callable[[str], Any] | None, Callable | None]:
    """(key function, comparison function): one of them is None."""
    if opts.get("-integer"):
        return get_int, None
    if opts.get("-real"):
        return get_float, None
    if opts.get("-dictionary"):
        return functools.cmp_to_key(dictionary_compare), None
    if "-command" in opts:
        prefix = str(opts["-command"])

        def compare(a: str, b: str) -> int:
            result = interp.eval_string(prefix + " " + join_list([a, b]))
            try:
                return get_int(result)
            except ScriptError:
                raise ScriptError(f'-compare command returned non-integer result "{result}"') from None

        return None, compare
    if opts.get("-nocase"):
        return fold_case, None
    return None, None


def _stride(opts: dict, index_path: list[str], length: int) -> tuple[int, list[str]]:
    """The group length of -stride (1 without it) and the -index path within a group (its
    first index picks the group's element, 0 by default)."""
    if "-stride" not in opts:
        return 1, index_path
    stride = get_int(str(opts["-stride"]))
    if stride < 2:
        raise ScriptError("stride length must be at least 2")
    if length % stride:
        raise ScriptError("list size must be a multiple of the stride length")
    if index_path and not 0 <= index_of(index_path[0], stride) < stride:
        raise ScriptError('when used with "-stride", the leading "-index" value must be within the group')
    return stride, [str(index_of(index_path[0], stride))] + index_path[1:] if index_path else ["0"]


@cmd("lsort ?-ascii|-dictionary|-integer|-real|-increasing|-decreasing|-unique|-nocase|-index|-stride|-indices|-command ...? list",
     "the elements sorted (stable); -unique keeps one of equal elements, -stride sorts groups, -indices gives positions")
def cmd_lsort(interp: Any, argv: list[str]) -> str:
    opts, i = parse_options(argv, 1, _LSORT_OPTIONS, 1, "lsort")
    if len(argv) - i != 1:
        raise ScriptError('wrong # args: should be "lsort ?-option value ...? list"')
    index_path = _index_path(str(opts["-index"])) if "-index" in opts else []
    items = _elements(argv[i])
    stride, index_path = _stride(opts, index_path, len(items))
    units = items if stride == 1 else [join_list(items[k:k + stride]) for k in range(0, len(items), stride)]
    key, compare = _sort_key(opts, interp)
    pick: Callable[[str], str] = (lambda s: _sub_element(s, index_path)) if index_path else (lambda s: s)
    if compare is not None:
        full = functools.cmp_to_key(lambda a, b: compare(pick(a), pick(b)))
    elif key is not None:
        inner = key
        full = (lambda s: inner(pick(s))) if index_path else inner
    else:
        full = pick if index_path else None
    decreasing = bool(opts.get("-decreasing"))
    by_position = stride > 1 or bool(opts.get("-indices"))  # sort positions, else the elements themselves
    ordered: list[Any]
    if full is None:
        ordered = sorted(range(len(units)) if by_position else units, key=units.__getitem__ if by_position else None,
                         reverse=decreasing)
        keys = [units[k] for k in ordered] if by_position else ordered
    else:
        decorated = [(full(s), k if by_position else s) for k, s in enumerate(units)]  # each key once (and fail early)
        decorated.sort(key=lambda pair: pair[0], reverse=decreasing)
        ordered = [unit for _, unit in decorated]
        keys = [key for key, _ in decorated]
    if opts.get("-unique"):  # of a run of equal elements, Tcl keeps the last
        ordered = [u for n, u in enumerate(ordered) if n + 1 == len(ordered) or _differ(keys[n], keys[n + 1])]
    if not by_position:
        return join_list(ordered)
    if opts.get("-indices"):
        return " ".join(str(k * stride + j) for k in ordered for j in range(stride))
    return join_list(items[k * stride + j] for k in ordered for j in range(stride))


def _differ(a: Any, b: Any) -> bool:
    return a < b or b < a


# --- lmap ---------------------------------------------------------------------------------------


@cmd("lmap varList list ?varList list ...? body", "like foreach, and collect the body's results in a list")
def cmd_lmap(interp: Any, argv: list[str]) -> str:
    if len(argv) < 4 or len(argv) % 2:
        raise ScriptError('wrong # args: should be "lmap varList list ?varList list ...? body"')
    body = interp.script_of(argv, len(argv) - 1)
    pairs = []
    for k in range(1, len(argv) - 1, 2):
        names = split_list(argv[k])
        if not names:
            raise ScriptError("lmap varlist is empty")
        pairs.append((names, _elements(argv[k + 1])))
    rounds = max((len(values) + len(names) - 1) // len(names) for names, values in pairs)
    results: list[str] = []
    for r in range(rounds):
        for names, values in pairs:
            for k, name in enumerate(names):
                j = r * len(names) + k
                interp.set_var(name, values[j] if j < len(values) else "")
        try:
            results.append(interp.eval_nested(body))
        except Break:
            break
        except Continue:
            continue
    return join_list(results)

