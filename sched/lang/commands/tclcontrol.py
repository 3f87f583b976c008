"""Tcl's control commands beyond loops and `if`: completion codes, levels, switch, apply.

    return ?-code C? ?-level N? ?-options D? ?-KEY V ...? ?value?
    error message ?info? ?code?        throw type message
    catch script ?resultVar? ?optionsVar?
    try body ?on code vars script? ?trap pattern vars script? ?finally script?
    upvar ?level? otherVar myVar ...     uplevel ?level? script ...
    switch ?-exact|-glob|-regexp? ?-nocase? ?-matchvar V? ?-indexvar V? ?--? string patterns
    apply {params body} ?arg ...?

A script's outcome is an Outcome: its completion code (0 ok, 1 error, 2 return, 3 break,
4 continue, or any integer), its result, its options dictionary (as `catch` reports it) and
the exception that carried it, so that `try` can let an unhandled outcome go on unchanged.
Levels are counted along the interpreter's frames (psched.lang.interp.Frame): `#0` is the globals,
`1` the caller. `switch` and `try` also have a block form (psched.lang.parser knows their clauses).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from ..errors import (Break, Continue, Interrupted, OtherCode, ParseError, Return, SchedError, ScriptError, Skip,
                     error_info)
from ..compile import Special, compiles
from ..interp import Frame, Interp
from ..nodes import Block, Command, Script
from ..parser import parse_cached
from ..patterns import fold_case, glob_tester
from ..record import Record
from ..registry import BUILTINS, CommandDef, Macro, parse_params
from ..tcllist import join_list, split_list, split_tuple
from ..tclregex import tcl_regex, regex_search

__all__ = ["Outcome", "run_caught", "completion_code", "frame_at"]

cmd = BUILTINS.command
block = BUILTINS.block

CODE_NAMES = {"ok": 0, "error": 1, "return": 2, "break": 3, "continue": 4}


def completion_code(text: str) -> int:
    """`ok`, `error`, ... or an integer, as `return -code` and `try ... on` take them."""
    code = CODE_NAMES.get(text)
    if code is not None:
        return code
    try:
        return int(text, 0)
    except ValueError:
        raise ScriptError(f'bad completion code "{text}": must be ok, error, return, break, continue, or an integer') from None


# --- outcomes ----------------------------------------------------------------------------------


class Outcome(Record):
    """How a script ended."""

    __slots__ = _fields = ("code", "result", "options", "carrier")
    code: int
    result: str
    options: dict[str, str]
    carrier: BaseException | None  # what to raise again to let the outcome go on

    def __init__(self, code: int, result: str, options: dict[str, str], carrier: BaseException | None = None) -> None:
        self.code = code
        self.result = result
        self.options = options
        self.carrier = carrier

    def resume(self) -> str:
        if self.carrier is not None:
            raise self.carrier
        return self.result


def run_caught(interp: Interp, script: Script, first_line: int | None = None) -> Outcome:
    """Run a script and keep its outcome; Ctrl-C and `skip` go through."""
    depth, frame = interp.depth, interp.frame
    try:
        return Outcome(0, interp.eval_nested(script), {"-code": "0", "-level": "0"})
    except Interrupted:
        raise
    except SchedError as err:
        return error_outcome(interp, err, script, first_line)
    except Skip:
        raise
    except Return as ret:
        options = {**ret.options, "-code": str(ret.code), "-level": str(ret.level)}
        if ret.code == 1 and "-errorcode" not in options:
            options["-errorcode"] = "NONE"  # as Tcl's options of an error
        return Outcome(2, ret.value, options, ret)
    except (Break, Continue) as flow:
        code = 3 if isinstance(flow, Break) else 4
        return Outcome(code, flow.value, {"-code": str(code), "-level": "0"}, flow)
    except OtherCode as other:
        return Outcome(other.code, other.value, {"-code": str(other.code), "-level": "0"}, other)
    finally:
        interp.depth, interp.frame = depth, frame


def error_outcome(interp: Interp, err: SchedError, script: Script | None = None, first_line: int | None = None) -> Outcome:
    """The outcome of a script that raised an error (or could not be read)."""
    interp.record_error(err)
    options = {"-code": "1", "-level": "0", "-errorcode": err.errorcode, "-errorinfo": error_info(err)}
    if script is not None and err.pos is not None and first_line is not None and err.pos.file == script.source.file:
        options["-errorline"] = str(max(err.pos.line - first_line + 1, 1))
    return Outcome(1, err.message, options, err)


def script_or_outcome(interp: Interp, argv: list[str], index: int) -> Script | Outcome:
    """The script of an argument, or, when it cannot be read, the error as an outcome: `catch`
    and `try` take a script's read errors as Tcl does, as errors of the script."""
    try:
        return interp.script_of(argv, index)
    except ParseError as err:
        return error_outcome(interp, err)


def _first_line(script: Script) -> int:
    return script.source.line0


# --- return, error, throw, catch -----------------------------------------------------------------


def _options_of(words: list[str], into: dict[str, str]) -> None:
    if len(words) % 2:
        raise ScriptError("missing value to go with key")
    for i in range(0, len(words), 2):
        into[words[i]] = words[i + 1]


@cmd("return ?-code|-level|-options|-errorcode|-errorinfo value ...? ?result?",
     "leave the macro or proc (or sourced file) with a value, or with another completion code")
def cmd_return(interp: Interp, argv: list[str]) -> str:
    args = argv[1:]
    value = args.pop() if len(args) % 2 else ""
    options: dict[str, str] = {}
    for i in range(0, len(args), 2):
        if args[i] == "-options":
            _options_of(split_list(args[i + 1]), options)
        else:
            options[args[i]] = args[i + 1]
    code = completion_code(options.pop("-code", "ok"))
    level_text = options.pop("-level", "1")
    try:
        level = int(level_text, 0)
    except ValueError:
        level = -1
    if level < 0:
        raise ScriptError(f'bad -level value: expected non-negative integer but got "{level_text}"')
    if code == 2:  # as Tcl: `-code return` is a plain return of one level more
        code, level = 0, level + 1
    if level == 0:  # the code takes effect here, as if the command itself completed with it
        if code == 0:
            return value
        return interp.finish_return(Return(value, code, 1, options))
    raise Return(value, code, level, options)


@cmd("error message ?errorInfo? ?errorCode?", "raise an error (with Tcl's errorInfo and errorCode if given)")
def cmd_error(interp: Interp, argv: list[str]) -> str:
    err = ScriptError(argv[1])
    if len(argv) > 2 and argv[2]:
        err.errorinfo = argv[2]
    if len(argv) > 3:
        err.errorcode = argv[3]
    raise err


@cmd("throw type message", "raise an error whose errorCode is type (a non-empty list)")
def cmd_throw(interp: Interp, argv: list[str]) -> str:
    if not split_list(argv[1]):
        raise ScriptError("type must be non-empty list")
    err = ScriptError(argv[2])
    err.errorcode = argv[1]
    raise err


@cmd("catch script ?resultVarName? ?optionVarName?",
     "run a script; its completion code: 0 ok, 1 error, 2 return, 3 break, 4 continue")
def cmd_catch(interp: Interp, argv: list[str]) -> str:
    script = script_or_outcome(interp, argv, 1)
    outcome = script if isinstance(script, Outcome) else run_caught(interp, script, _first_line(script))
    if len(argv) > 2:
        interp.set_var(argv[2], outcome.result)
    if len(argv) > 3:
        interp.set_var(argv[3], _dict_text(outcome.options))
    return str(outcome.code)


def _dict_text(options: dict[str, str]) -> str:
    return join_list([x for kv in options.items() for x in kv])


# --- try -----------------------------------------------------------------------------------------


class Handler(Record):
    """One `on` or `trap` clause of a try: what it takes and the script it runs."""

    __slots__ = _fields = ("kind", "match", "names", "script")
    kind: str  # "on" or "trap"
    match: Any  # a code (on) or a list of errorCode words (trap)
    names: list[str]
    script: Script | None  # None: `-`, fall through to the next handler's script

    def __init__(self, kind: str, match: Any, names: list[str], script: Script | None) -> None:
        self.kind = kind
        self.match = match
        self.names = names
        self.script = script


def _handler_matches(handler: Handler, outcome: Outcome) -> bool:
    if handler.kind == "on":
        return handler.match == outcome.code
    if outcome.code != 1:
        return False
    code = split_list(outcome.options.get("-errorcode", "NONE"))
    return code[:len(handler.match)] == handler.match


def _run_try(interp: Interp, body: Script | Outcome, handlers: list[Handler], final: Script | None) -> str:
    outcome = body if isinstance(body, Outcome) else run_caught(interp, body, _first_line(body))
    for i, handler in enumerate(handlers):
        if not _handler_matches(handler, outcome):
            continue
        script = next((h.script for h in handlers[i:] if h.script is not None), None)
        if handler.names:
            interp.set_var(handler.names[0], outcome.result)
        if len(handler.names) > 1:
            interp.set_var(handler.names[1], _dict_text(outcome.options))
        if script is not None:
            outcome = run_caught(interp, script, _first_line(script))
        break
    if final is not None:
        after = run_caught(interp, final, _first_line(final))
        if after.code != 0:
            return after.resume()
    return outcome.resume()


def _handler(kind: str, words: list[str], script: Script | None) -> Handler:
    names = split_list(words[1])
    if len(names) > 2:
        raise ScriptError("wrong # args to " + kind + " clause: variableList must have at most two names")
    match: Any = completion_code(words[0]) if kind == "on" else split_list(words[0])
    return Handler(kind, match, names, script)


@cmd("try body ?handler ...? ?finally script?",
     "run a body; `on CODE {result ?options?} script` and `trap ERRORCODE {...} script` handle its outcome")
def cmd_try(interp: Interp, argv: list[str]) -> str:
    body = script_or_outcome(interp, argv, 1)
    handlers: list[Handler] = []
    final = None
    i, n = 2, len(argv)
    while i < n:
        word = argv[i]
        if word in ("on", "trap"):
            if n - i < 4:
                raise ScriptError(f'wrong # args to {word} clause: must be "... {word} {"code" if word == "on" else "pattern"} variableList script"')
            script = None if argv[i + 3] == "-" else interp.script_of(argv, i + 3)
            handlers.append(_handler(word, argv[i + 1:i + 3], script))
            i += 4
        elif word == "finally":
            if i + 2 != n:
                raise ScriptError('wrong # args to finally clause: must be "... finally script"')
            final = interp.script_of(argv, i + 1)
            i += 2
        else:
            raise ScriptError(f'bad handler type "{word}": must be finally, on, or trap')
    if handlers and handlers[-1].script is None:
        raise ScriptError('last non-finally clause must not have a body of "-"')
    return _run_try(interp, body, handlers, final)


@block("try", "block form: try / body / on CODE VARS / ... / trap PATTERN VARS / ... / finally / ... / end")
def block_try(interp: Interp, node: Block) -> str:
    handlers: list[Handler] = []
    final = None
    for clause in node.clauses:
        argv = [interp.subst_word(w) for w in clause.header.words]
        if argv[0] == "finally":
            final = clause.body
        else:
            handlers.append(_handler(argv[0], argv[1:], clause.body if clause.body.commands else None))
    if handlers and handlers[-1].script is None:  # an empty last handler: nothing to run
        handlers[-1].script = Script([], node.body.source)
    return _run_try(interp, node.body, handlers, final)


# --- levels: upvar, uplevel ----------------------------------------------------------------------


def _looks_like_level(text: str) -> bool:
    return bool(text) and (text[0] == "#" or text[0].isdigit())


def frame_at(interp: Interp, text: str) -> Frame:
    """The frame that a level (`#N` absolute, `N` up from here) names."""
    current = interp.frame
    try:
        target = int(text[1:]) if text.startswith("#") else current.level - int(text)
    except ValueError:
        target = -1
    if text.startswith("#-") or not 0 <= target <= current.level:
        raise ScriptError(f'bad level "{text}"')
    frame = current
    while frame.level > target and frame.caller is not None:
        frame = frame.caller
    return frame


@cmd("upvar ?level? otherVar localVar ?otherVar localVar ...?",
     "make localVar a name for otherVar of the caller (or of the frame at level)")
def cmd_upvar(interp: Interp, argv: list[str]) -> str:
    first = 1
    level = "1"
    if len(argv) % 2 == 0 and _looks_like_level(argv[1]):  # an odd number of arguments: a level first
        level, first = argv[1], 2
    if len(argv) - first < 2 or (len(argv) - first) % 2:
        raise ScriptError('wrong # args: should be "upvar ?level? otherVar localVar ?otherVar localVar ...?"')
    caller = interp.frame.caller
    # (level 1 is the caller: a frame's caller is always one level up)
    target = caller if level == "1" and caller is not None else frame_at(interp, level)
    for k in range(first, len(argv), 2):
        interp.link_var(argv[k + 1], target, argv[k])
    return ""


@compiles(cmd_upvar)
def _compiled_upvar(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """`upvar 1 otherVar localVar`, what most procs that take a variable by name do."""
    words = command.words
    if len(words) != 4 or words[1].const != "1":
        return None

    def upvar1(interp: Interp, argv: list[str]) -> str:
        caller = interp.frame.caller
        if caller is None:  # at the top level: the error cmd_upvar gives
            return cmd_upvar(interp, argv)
        interp.link_var(argv[3], caller, argv[2])
        return ""

    return upvar1


@cmd("uplevel ?level? arg ?arg ...?", "run a script in the caller's frame (or in the frame at level)")
def cmd_uplevel(interp: Interp, argv: list[str]) -> str:
    first = 1
    level = "1"
    if len(argv) > 2 and _looks_like_level(argv[1]):
        level, first = argv[1], 2
    target = frame_at(interp, level)
    script = interp.script_of(argv, first) if len(argv) == first + 1 else parse_cached(" ".join(argv[first:]))
    saved = interp.frame
    interp.frame = target
    try:
        return interp.eval_nested(script)
    finally:
        interp.frame = saved


# --- apply ---------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _lambda(text: str) -> Macro:
    parts = split_list(text)
    if len(parts) not in (2, 3):
        raise ScriptError(f'can\'t interpret "{text}" as a lambda expression')
    params, variadic = parse_params(parts[0])
    return Macro("apply lambdaExpr", params, parse_cached(parts[1]), "proc", variadic=variadic, called="apply lambdaExpr")


@cmd("apply lambdaExpr ?arg ...?", "call an anonymous proc: lambdaExpr is {params body}")
def cmd_apply(interp: Interp, argv: list[str]) -> str:
    return interp.call_macro(_lambda(argv[1]), argv[1:])


# --- switch --------------------------------------------------------------------------------------

_SWITCH_OPTIONS = ("-exact", "-glob", "-indexvar", "-matchvar", "-nocase", "-regexp", "--")
_SWITCH_USAGE = 'wrong # args: should be "switch ?-option ...? string ?pattern body ...? ?default body?"'


class SwitchSpec(Record):
    __slots__ = _fields = ("mode", "nocase", "matchvar", "indexvar")
    mode: str
    nocase: bool
    matchvar: str | None
    indexvar: str | None

    def __init__(self, mode: str = "-exact", nocase: bool = False, matchvar: str | None = None,
                 indexvar: str | None = None) -> None:
        self.mode = mode
        self.nocase = nocase
        self.matchvar = matchvar
        self.indexvar = indexvar


def _switch_options(argv: list[str], stop: int) -> tuple[SwitchSpec, int]:
    """Options of switch among argv[1:stop] (the same ones are read once)."""
    if stop < 2:
        return _NO_OPTIONS, 1
    spec, i = _options_read(tuple(argv[1:stop]), len(argv))
    if i > stop:  # an option's value was the word after the options: read them with it
        return _read_switch_options(argv, stop)
    return spec, i


def _read_switch_options(argv: list[str], stop: int) -> tuple[SwitchSpec, int]:
    """Options of switch among argv[1:stop]; returns them and the index of the string."""
    spec = SwitchSpec()
    mode_given = None
    i = 1
    while i < stop and argv[i].startswith("-"):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if word not in _SWITCH_OPTIONS:
            raise ScriptError(f'bad option "{word}": must be -exact, -glob, -indexvar, -matchvar, -nocase, -regexp, or --')
        if word in ("-exact", "-glob", "-regexp"):
            if mode_given is not None:
                raise ScriptError(f'bad option "{word}": {mode_given} option already found')
            spec.mode = mode_given = word
        elif word == "-nocase":
            spec.nocase = True
        else:
            if i + 1 >= len(argv) - 1:
                raise ScriptError(f'missing variable name argument to {word} option')
            setattr(spec, word[1:], argv[i + 1])
            i += 1
        i += 1
    if (spec.matchvar or spec.indexvar) and spec.mode != "-regexp":
        raise ScriptError(f'{"-matchvar" if spec.matchvar else "-indexvar"} option requires -regexp option')
    return spec, i


_NO_OPTIONS = SwitchSpec()


@lru_cache(maxsize=512)
def _options_read(words: tuple[str, ...], length: int) -> tuple[SwitchSpec, int]:
    """_read_switch_options of a command of `length` words whose words 1.. are `words` and
    whose last two are not read (unless the result says so: then the caller reads again)."""
    return _read_switch_options(["switch", *words] + [""] * (length - 1 - len(words)), len(words) + 1)


def _switch_match(interp: Interp, spec: SwitchSpec, pattern: str, text: str) -> bool:
    if spec.mode == "-exact":
        return pattern == text if not spec.nocase else fold_case(pattern) == fold_case(text)
    if spec.mode == "-glob":
        return pattern == "*" or glob_tester(pattern, spec.nocase)(text)
    rx = tcl_regex(pattern, spec.nocase)
    m = regex_search(interp, rx, text, 0)
    if m is None:
        return False
    groups = range(rx.groups + 1)
    if spec.matchvar:
        interp.set_var(spec.matchvar, join_list([m.group(g) or "" for g in groups]))
    if spec.indexvar:
        interp.set_var(spec.indexvar, join_list([f"{m.start(g)} {m.end(g) - 1}" if m.start(g) >= 0 else "-1 -1" for g in groups]))
    return True


def _switch_pick(interp: Interp, spec: SwitchSpec, text: str, patterns: tuple[str, ...]) -> int | None:
    """The index of the first pattern that matches (`default` matches as the last one)."""
    if spec.mode == "-glob":
        return _glob_pick(patterns, spec.nocase)(text)
    last = len(patterns) - 1
    for k, pattern in enumerate(patterns):
        if k == last and pattern == "default":
            _default_match_vars(interp, spec)
            return k
        if _switch_match(interp, spec, pattern, text):
            return k
    return None


def _default_match_vars(interp: Interp, spec: SwitchSpec) -> None:
    """As in Tcl: the default branch sets -matchvar and -indexvar to the empty list."""
    for name in (spec.matchvar, spec.indexvar):
        if name:
            interp.set_var(name, "")


@lru_cache(maxsize=512)
def _glob_pick(patterns: tuple[str, ...], nocase: bool) -> Callable[[str], int | None]:
    """_switch_pick of `switch -glob` with these patterns, as a function of the text."""
    tests = [glob_tester(p, nocase) for p in patterns]
    default = len(patterns) - 1 if patterns and patterns[-1] == "default" else None

    def pick(text: str) -> int | None:
        for k, test in enumerate(tests):
            if test(text):
                return k
        return default

    return pick


@lru_cache(maxsize=512)
def _switch_table(text: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The patterns and bodies of a switch written as one word: (pairs, patterns, bodies)."""
    pairs = split_tuple(text)
    return _checked_pairs(pairs)


def _checked_pairs(pairs: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    if len(pairs) % 2:
        raise ScriptError("extra switch pattern with no body")
    patterns, bodies = pairs[::2], pairs[1::2]
    if bodies and bodies[-1] == "-":
        raise ScriptError(f'no body specified for pattern "{patterns[-1]}"')
    return pairs, patterns, bodies


@cmd("switch ?-exact|-glob|-regexp|-nocase|-matchvar|-indexvar|-- ...? string ?pattern body ...?",
     "run the body of the first pattern that matches the string (`-` falls through; `default` matches all)")
def cmd_switch(interp: Interp, argv: list[str]) -> str:
    if len(argv) < 3:
        raise ScriptError(_SWITCH_USAGE)
    spec, i = _switch_options(argv, len(argv) - 2)
    if len(argv) - i < 2:
        raise ScriptError(_SWITCH_USAGE)
    text = argv[i]
    if len(argv) - i == 2:  # the patterns and bodies in one word
        pairs, patterns, bodies = _switch_table(argv[i + 1])
        k = _switch_pick(interp, spec, text, patterns)
        return "" if k is None else _switch_body(interp, argv, i, pairs, bodies, k, None)
    pairs, patterns, bodies = _checked_pairs(tuple(argv[i + 1:]))
    k = _switch_pick(interp, spec, text, patterns)
    if k is None:
        return ""
    while bodies[k] == "-":
        k += 1
    return interp.eval_nested(interp.script_of(argv, i + 2 + 2 * k))


def _switch_body(interp: Interp, argv: list[str], i: int, pairs: tuple[str, ...], bodies: tuple[str, ...], k: int,
                 placed: dict[int, Script | None] | None) -> str:
    """Run the body of pattern k (or of the first after it that is not `-`) of a switch whose
    patterns and bodies are the one word argv[i + 1]; `placed` keeps the bodies found."""
    while bodies[k] == "-":
        k += 1
    script = placed.get(k, _UNPLACED) if placed is not None else _UNPLACED
    if script is _UNPLACED:  # the bodies are elements of one braced word: parse the chosen one at its place
        found = interp.script_within(argv, i + 1, pairs[:2 * k + 2])
        script = found[-1] if found else None
        if placed is not None:
            placed[k] = script
    return interp.run_script(script) if script is not None else interp.eval_string(bodies[k])


_UNPLACED: Any = object()


@compiles(cmd_switch)
def _compiled_switch(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """A switch whose options and one word of patterns and bodies are constants (the string
    may be anything): the options and the table read once, the bodies parsed at their first
    run; -glob patterns are tested by functions made once."""
    words = command.words
    n = len(words)
    if n < 3 or any(w.const is None for w in words[1:n - 2]) or words[n - 1].const is None:
        return None
    argv = [w.const or "" for w in words]
    spec, i = _switch_options(argv, n - 2)
    if i != n - 2:  # (the string was read as the value of an option)
        return None
    pairs, patterns, bodies = _switch_table(argv[n - 1])
    pick = _glob_pick(patterns, spec.nocase) if spec.mode == "-glob" else None
    placed: dict[int, Script | None] = {}

    def switch(interp: Interp, argv: list[str]) -> str:
        text = argv[i]
        k = pick(text) if pick is not None else _switch_pick(interp, spec, text, patterns)
        return "" if k is None else _switch_body(interp, argv, i, pairs, bodies, k, placed)

    return switch


@block("switch ?-exact|-glob|-regexp|-nocase? string",
       "block form: switch ?options? STRING / case PATTERN ?PATTERN ...? / body ... / default / body / end")
def block_switch(interp: Interp, node: Block) -> str:
    argv = [interp.subst_word(w) for w in node.header.words]
    spec, i = _switch_options(argv, len(argv) - 1)
    if i != len(argv) - 1:
        raise ScriptError('wrong # args: should be "switch ?-option ...? string" on the line that opens the block')
    text = argv[i]
    for clause in node.clauses:
        words = [interp.subst_word(w) for w in clause.header.words]
        if words[0] == "default":
            _default_match_vars(interp, spec)
            return interp.run_script(clause.body)
        if any(_switch_match(interp, spec, p, text) for p in words[1:]):
            return interp.run_script(clause.body)
    return ""

