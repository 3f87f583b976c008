"""Tcl's `dict` ensemble: a dictionary is a list of keys and values, read and written as text.

    dict create|get|set|unset|exists|keys|values|size|for|map|filter|merge|replace|remove
         |append|lappend|incr|update|with

A dictionary value is the string of a list with an even number of elements; the later of two
equal keys wins and keeps the place of the first, as in Tcl. Commands that change a dictionary
write it back in canonical form (`join_list` of the pairs). Parsing a dictionary is cached by
its text, so a loop that reads the same dictionary parses it once; a long dictionary that
`dict set`, `append`, `lappend` or `incr` change one key at a time keeps its quoted keys and
values beside its text (`_EDITED`), so a change quotes only what changed.
"""

from __future__ import annotations

from typing import Any

from ..args import get_int
from ..errors import Break, Continue, ListError, ScriptError
from ..patterns import glob_match
from ..registry import BUILTINS
from ..tcllist import EDITED, KeptForms, join_list, quote_element, quoted_parts, split_tuple

__all__ = ["dict_of", "dict_text"]

dict_ens = BUILTINS.ensemble("dict", "dictionaries: key-value lists (create, get, set, for, ...)")
sub = dict_ens.sub


_PARSED: dict[str, dict[str, str]] = {}
"""Dictionaries by their text: those read lately and those the commands wrote (so that a loop
of `dict incr` on one variable never parses what it just wrote). Never handed out: dict_of
gives a copy."""
_PARSED_KEEP = 512
_PARSED_CHARS = 4 << 20
"""At most this many characters of dictionary text are kept in _PARSED (a loop of `dict set` on
one large dictionary writes a new text each time: 512 of them could hold gigabytes)."""
_KEPT_CHARS = [0]


def _remember(text: str, table: dict[str, str]) -> None:
    if len(_PARSED) >= _PARSED_KEEP or _KEPT_CHARS[0] + len(text) > _PARSED_CHARS:
        _PARSED.clear()  # (dropping the oldest one by one makes iterating the dict slow)
        _KEPT_CHARS[0] = 0
    if len(text) <= _PARSED_CHARS:
        _PARSED[text] = table
        _KEPT_CHARS[0] += len(text)


def dict_of(text: str) -> dict[str, str]:
    """The dictionary a string holds (a new dict: callers may change it)."""
    if not text:
        return {}
    table = _PARSED.get(text)
    if table is None:
        try:
            items = split_tuple(text)
        except ListError as e:  # Tcl's words for a dictionary: "unmatched open brace in dict"
            raise ListError(e.message.replace("list element", "dict element").replace("in list", "in dict"),
                            offset=e.offset, element=e.element) from None
        if len(items) % 2:
            err = ScriptError("missing value to go with key")
            err.errorcode = "TCL VALUE DICTIONARY"  # as Tcl's
            raise err
        table = dict(zip(items[::2], items[1::2]))
        _remember(text, table)
    return table.copy()


def dict_text(table: dict[str, str]) -> str:
    """The canonical text of a dictionary (which the caller then leaves as it is: it is kept
    as the parse of that text)."""
    text = join_list([x for kv in table.items() for x in kv])
    _remember(text, table)
    return text


_EDITED = KeptForms()
"""Long dictionaries that `dict set`, `append`, `lappend` and `incr` of one key change in a
variable, kept beside their text: the table, each key's and value's quoted form (`parts`, key at
an even index, its value after it) and each key's index there. The next change of one key then
quotes only what changed and joins the parts once, instead of quoting every key and value
again in Python (~1 us each: a loop of `dict set` on one dictionary of thousands of keys was
quadratic)."""


def _set_key(interp: Any, name: str, key: str, change: Any) -> str:
    """Variable `name`'s dictionary with `change(old value or None)` at `key`, written back."""
    text = _var_text(interp, name)
    form = _EDITED.take(text) if len(text) >= _EDITED.min_chars else None
    if form is None:
        table = dict_of(text)
        value = change(table.get(key))
        table[key] = value
        new = dict_text(table)
        if len(new) >= _EDITED.min_chars:
            flat = [x for kv in table.items() for x in kv]
            _EDITED.keep(new, (table.copy(), quoted_parts(flat), {k: 2 * i for i, k in enumerate(table)}))
        return interp.set_var(name, new)
    table, parts, places = form
    try:
        value = change(table.get(key))
    except BaseException:
        _EDITED.keep(text, form)  # (unchanged: kept for the next change)
        raise
    place = places.get(key)
    if place is None:
        places[key] = len(parts)
        parts.append(quote_element(key, quote_hash=not parts))
        parts.append(quote_element(value, quote_hash=False))
    else:
        parts[place + 1] = quote_element(value, quote_hash=False)
    table[key] = value
    new = " ".join(parts)
    _EDITED.keep(new, (table, parts, places))
    _remember(new, table.copy())  # (what dict_of reads: never the kept table, which changes)
    return interp.set_var(name, new)


def _var_text(interp: Any, name: str) -> str:
    """The text of a dictionary variable a command is about to change."""
    try:
        return interp.get_var(name)
    except ScriptError:  # a missing variable is an empty dictionary
        if interp.var_exists(name):  # an array: Tcl says so as it looks the variable up to write it
            raise ScriptError(f'can\'t set "{name}": variable is array') from None
        return ""


def _var_dict(interp: Any, name: str) -> dict[str, str]:
    return dict_of(_var_text(interp, name))


def _unknown_key(key: str) -> ScriptError:
    err = ScriptError(f'key "{key}" not known in dictionary')
    err.errorcode = join_list(["TCL", "LOOKUP", "DICT", key])  # as Tcl's
    return err


def _get_path(table: dict[str, str], keys: list[str]) -> str:
    value = ""
    for i, key in enumerate(keys):
        if key not in table:
            raise _unknown_key(key)
        value = table[key]
        if i < len(keys) - 1:
            table = dict_of(value)
    return value


def _set_path(table: dict[str, str], keys: list[str], value: str | None) -> dict[str, str]:
    """The dictionary with the value at a path of keys set (None: removed)."""
    key = keys[0]
    if len(keys) == 1:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        return table
    if key not in table and value is None:
        raise _unknown_key(key)
    inner = dict_of(table.get(key, ""))
    table[key] = dict_text(_set_path(inner, keys[1:], value))
    return table


@sub("dict create ?key value ...?", "a dictionary of the keys and values")
def dict_create(interp: Any, argv: list[str]) -> str:
    if len(argv) % 2:
        raise ScriptError('wrong # args: should be "dict create ?key value ...?"')
    return dict_text(dict(zip(argv[2::2], argv[3::2])))


@sub("dict get dictionary ?key ...?", "the value at a key (several keys reach into nested dictionaries)")
def dict_get(interp: Any, argv: list[str]) -> str:
    table = dict_of(argv[2])
    if len(argv) == 3:
        return dict_text(table)
    return _get_path(table, argv[3:])


@sub("dict exists dictionary key ?key ...?", "1 if the path of keys leads to a value")
def dict_exists(interp: Any, argv: list[str]) -> str:
    value = argv[2]
    for key in argv[3:]:
        try:
            table = dict_of(value)
        except (ScriptError, ListError):  # no dictionary on the path: as Tcl, it does not exist
            return "0"
        if key not in table:
            return "0"
        value = table[key]
    return "1"


@sub("dict set dictVarName key ?key ...? value", "set the value at a key in the dictionary in a variable")
def dict_set(interp: Any, argv: list[str]) -> str:
    if len(argv) == 5:
        return _set_key(interp, argv[2], argv[3], lambda _: argv[4])
    table = _set_path(_var_dict(interp, argv[2]), argv[3:-1], argv[-1])
    return interp.set_var(argv[2], dict_text(table))


@sub("dict unset dictVarName key ?key ...?", "remove a key from the dictionary in a variable")
def dict_unset(interp: Any, argv: list[str]) -> str:
    table = _set_path(_var_dict(interp, argv[2]), argv[3:], None)
    return interp.set_var(argv[2], dict_text(table))


@sub("dict keys dictionary ?globPattern?", "the keys (that match a glob pattern)")
def dict_keys(interp: Any, argv: list[str]) -> str:
    keys = list(dict_of(argv[2]))
    if len(argv) == 4:
        keys = [k for k in keys if glob_match(argv[3], k)]
    return join_list(keys)


@sub("dict values dictionary ?globPattern?", "the values (that match a glob pattern)")
def dict_values(interp: Any, argv: list[str]) -> str:
    values = list(dict_of(argv[2]).values())
    if len(argv) == 4:
        values = [v for v in values if glob_match(argv[3], v)]
    return join_list(values)


@sub("dict size dictionary", "the number of keys")
def dict_size(interp: Any, argv: list[str]) -> str:
    return str(len(dict_of(argv[2])))


def _two_names(text: str) -> tuple[str, str]:
    names = split_tuple(text)
    if len(names) != 2:
        raise ScriptError("must have exactly two variable names")
    return names[0], names[1]


@sub("dict for {keyVarName valueVarName} dictionary body", "run a body for each key and value")
def dict_for(interp: Any, argv: list[str]) -> str:
    kname, vname = _two_names(argv[2])
    body = interp.script_of(argv, 4)
    for key, value in dict_of(argv[3]).items():
        interp.set_var(kname, key)
        interp.set_var(vname, value)
        if not interp.loop_body(body):
            break
    return ""


@sub("dict map {keyVarName valueVarName} dictionary body", "a dictionary of the keys and the body's results")
def dict_map(interp: Any, argv: list[str]) -> str:
    kname, vname = _two_names(argv[2])
    body = interp.script_of(argv, 4)
    out: dict[str, str] = {}
    for key, value in dict_of(argv[3]).items():
        interp.set_var(kname, key)
        interp.set_var(vname, value)
        try:
            result = interp.eval_nested(body)
        except Break:
            return ""  # as in Tcl: a break drops what the loop made
        except Continue:
            continue
        out[interp.get_var(kname)] = result
    return dict_text(out)


@sub("dict filter dictionary filterType ?arg ...?", "the pairs whose key or value matches, or for which a script is true")
def dict_filter(interp: Any, argv: list[str]) -> str:
    table = dict_of(argv[2])
    kind = argv[3] if len(argv) > 3 else ""
    if kind not in ("key", "value", "script") or len(argv) < 4:
        raise ScriptError(f'bad filterType "{kind}": must be key, script, or value')
    if kind == "key":
        return dict_text({k: v for k, v in table.items() if any(glob_match(p, k) for p in argv[4:])})
    if kind == "value":
        return dict_text({k: v for k, v in table.items() if any(glob_match(p, v) for p in argv[4:])})
    if len(argv) != 6:
        raise ScriptError('wrong # args: should be "dict filter dictionary script {keyVarName valueVarName} filterScript"')
    kname, vname = _two_names(argv[4])
    script = interp.script_of(argv, 5)
    out: dict[str, str] = {}
    for key, value in table.items():
        interp.set_var(kname, key)
        interp.set_var(vname, value)
        try:
            keep = interp.condition(interp.eval_nested(script))
        except Break:
            break
        except Continue:
            continue
        if keep:
            out[key] = value
    return dict_text(out)


@sub("dict merge ?dictionary ...?", "one dictionary of all the pairs (later keys win)")
def dict_merge(interp: Any, argv: list[str]) -> str:
    tables = [dict_of(text) for text in argv[2:]]
    if len(tables) >= 1 and not any(tables[1:]):
        return argv[2]  # as in Tcl: nothing merged into it, the first dictionary is returned as it was
    out: dict[str, str] = {}
    for table in tables:
        out.update(table)
    return dict_text(out)


@sub("dict replace dictionary ?key value ...?", "the dictionary with these keys set")
def dict_replace(interp: Any, argv: list[str]) -> str:
    if len(argv) % 2 == 0:
        raise ScriptError('wrong # args: should be "dict replace dictionary ?key value ...?"')
    table = dict_of(argv[2])
    table.update(zip(argv[3::2], argv[4::2]))
    return dict_text(table)


@sub("dict remove dictionary ?key ...?", "the dictionary without these keys")
def dict_remove(interp: Any, argv: list[str]) -> str:
    table = dict_of(argv[2])
    for key in argv[3:]:
        table.pop(key, None)
    return dict_text(table)


@sub("dict append dictVarName key ?string ...?", "add text to the end of the value at a key")
def dict_append(interp: Any, argv: list[str]) -> str:
    return _set_key(interp, argv[2], argv[3], lambda old: (old or "") + "".join(argv[4:]))


@sub("dict lappend dictVarName key ?value ...?", "append list elements to the value at a key")
def dict_lappend(interp: Any, argv: list[str]) -> str:
    return _set_key(interp, argv[2], argv[3], lambda old: EDITED.appended(old or "", argv[4:]))


@sub("dict incr dictVarName key ?increment?", "add to the integer at a key (a missing one counts as 0)")
def dict_incr(interp: Any, argv: list[str]) -> str:
    step = get_int(argv[4]) if len(argv) == 5 else 1
    # (a missing key takes the increment as it was written, as in Tcl: `dict incr d k 0x10` stores 0x10)
    return _set_key(interp, argv[2], argv[3],
                    lambda old: str(get_int(old) + step) if old is not None else argv[4] if len(argv) == 5 else "1")


@sub("dict update dictVarName key varName ?key varName ...? body",
     "run a body with variables set from keys; write them back after")
def dict_update(interp: Any, argv: list[str]) -> str:
    pairs = argv[3:-1]
    if len(pairs) % 2 or not pairs:
        raise ScriptError('wrong # args: should be "dict update dictVarName key varName ?key varName ...? script"')
    body = interp.script_of(argv, len(argv) - 1)
    table = dict_of(interp.get_var(argv[2]))  # (as Tcl: the variable must exist)
    for key, name in zip(pairs[::2], pairs[1::2]):
        if key in table:
            interp.set_var(name, table[key])
        else:
            interp.unset_var(name, nocomplain=True)
    try:
        return interp.eval_nested(body)
    finally:
        if interp.var_exists(argv[2]):  # (a body that unset it: as Tcl, it stays unset)
            _update_back(interp, argv[2], pairs)


def _update_back(interp: Any, var: str, pairs: list[str]) -> None:
    table = _var_dict(interp, var)
    for key, name in zip(pairs[::2], pairs[1::2]):
        if interp.var_exists(name):
            table[key] = interp.get_var(name)
        else:
            table.pop(key, None)
    interp.set_var(var, dict_text(table))


@sub("dict with dictVarName ?key ...? body", "run a body with a variable for each key; write them back after")
def dict_with(interp: Any, argv: list[str]) -> str:
    if len(argv) < 4:
        raise ScriptError('wrong # args: should be "dict with dictVarName ?key ...? script"')
    path = argv[3:-1]
    body = interp.script_of(argv, len(argv) - 1)
    outer = dict_of(interp.get_var(argv[2]))  # (as Tcl: the variable must exist)
    inner = dict_of(_get_path(outer, path)) if path else outer
    for key, value in inner.items():
        interp.set_var(key, value)
    keys = list(inner)
    try:
        return interp.eval_nested(body)
    finally:
        if interp.var_exists(argv[2]):  # (a body that unset it: as Tcl, it stays unset)
            _with_back(interp, argv[2], path, keys)


def _with_back(interp: Any, var: str, path: list[str], keys: list[str]) -> None:
    """`dict with`'s write-back, as Tcl's: the variables of the keys the body began with, into
    the dictionary the variable holds now (a key whose variable is gone is removed)."""
    outer = _var_dict(interp, var)
    inner = dict_of(_get_path(outer, path)) if path else outer
    for key in keys:
        if interp.var_exists(key):
            inner[key] = interp.get_var(key)
        else:
            inner.pop(key, None)
    outer = _set_path(outer, path, dict_text(inner)) if path else inner
    interp.set_var(var, dict_text(outer))
