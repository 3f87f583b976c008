"""Compiling the syntax tree into Python closures, once per node, at its first run.

    code = script_code(script)       # run_script calls it (with the depth counted around it)
    code = command_code(command, interp)
    result = code(interp)

A command's closure does what a walk of its node would do, in the same order: it checks for
Ctrl-C, builds the words (constant words are constants, `$name` is a direct read of the
frame, `[script]` runs the compiled script), looks the command up by name, checks the count
of words, calls the command, and on the way out adds the error's position and trace line
(or the node a break/continue came from) exactly as the interpreter's general path does.

Looking the command up is one dict read per call, so a command defined, redefined or renamed
while a script runs is seen at its next call. The count of words is checked again only when
the name finds another definition than last time (a command's count of words does not change
between calls, except with {*}).

A command whose function has a compiled form (registered with `compiles(fn)` next to the
command itself: `for`, `expr`, `switch`...) gets it made once from its constant words (parsed
bodies, compiled expressions, switch tables); at each call the form is used only when the
name still finds that same function, else the call goes the general way. A compiled form keeps
its command's semantics: it computes ahead only what the command would compute from constant
words, then runs the command's own code.

Word builders are generated per shape of command (which words are constants, variables,
[scripts] or other words) with `exec`, as dataclasses and namedtuple do, so that building the
words of a command is one Python call with no loop.
"""

from __future__ import annotations

import weakref
from types import MethodType
from typing import TYPE_CHECKING, Any, Callable

from .errors import ControlFlow, Interrupted, SchedError, ScriptError
from .nodes import Block, CmdSub, Command, Script, VarRef, Word
from .registry import CommandDef, Ensemble
from .lazylog import lazy_logger

if TYPE_CHECKING:
    from .interp import Interp

log = lazy_logger(__name__)  # logging loads at the first message (start-up)

__all__ = ["Code", "Special", "MAX_DEPTH", "compiles", "script_code", "command_code", "too_deep"]

Code = Callable[["Interp"], str]
"""A compiled script or command: run it against an interpreter, get its result."""

Special = Callable[["Interp", list[str]], str]
"""A command's compiled form: called with the words of the command, as the command would be."""

Factory = Callable[[Command, CommandDef, "Interp"], "Special | None"]
"""Makes a command's compiled form from its node, whose count of words fits the command (None:
the node does not fit the form; a SchedError: the same, the command will say why when it runs)."""

_FACTORIES: dict[Callable, Factory] = {}

_NEVER = object()
"""Stands for "no compiled form": no command function is this object."""


def compiles(fn: Callable) -> Callable[[Factory], Factory]:
    """Register the factory of the compiled form of the command whose function is `fn`."""

    def register(factory: Factory) -> Factory:
        _FACTORIES[fn] = factory
        return factory

    return register


# --- scripts -------------------------------------------------------------------------------------

MAX_DEPTH = 400
"""How deep macros, procs and nested evaluations may go before we call it runaway recursion."""


def too_deep() -> ScriptError:
    """The error of a script run more than MAX_DEPTH levels deep."""
    return ScriptError(f"too many nested evaluations (more than {MAX_DEPTH} levels; infinite recursion?)")


def script_code(script: Script, interp: Interp) -> Code:
    """The closure that runs the commands of `script` one level deeper (made once, kept on the
    node): the result is the last command's."""
    code = script.code
    if code is None:
        code = script.code = _compile_script(script, interp)
    return code


def _compile_script(script: Script, interp: Interp) -> Code:
    commands = script.commands
    if len(commands) == 1:
        only = command_code(commands[0], interp)

        def run_one(interp: Interp) -> str:
            interp.depth += 1
            try:
                if interp.depth > MAX_DEPTH:
                    raise too_deep()
                return only(interp)
            finally:
                interp.depth -= 1

        return run_one

    def run(interp: Interp) -> str:
        interp.depth += 1
        try:
            if interp.depth > MAX_DEPTH:
                raise too_deep()
            # Each command is compiled when it first runs: a long file run once, or a body
            # that returns early, pays only for what runs.
            result = ""
            for command in commands:
                code = command.plan
                # (the last result is dropped first: a value it shared with a variable is then
                # the variable's alone, which append and lappend grow in place)
                result = ""
                result = (code if code is not None else command_code(command, interp))(interp)
            return result
        finally:
            interp.depth -= 1

    return run


# --- commands ------------------------------------------------------------------------------------


def command_code(command: Command | Block, interp: Interp) -> Code:
    """The closure that runs one command (made once, kept on the node)."""
    code = command.plan
    if code is None:
        if type(command) is Block:
            code = _general(command, None)
        elif command.expands:
            code = _general(command, command.words)
        else:
            code = _compile_command(command, interp)
        command.plan = code
    return code


def _special(command: Command, interp: Interp) -> tuple[Any, Special | None]:
    """The compiled form of a command, if its function has one and the node fits it, with the
    function it stands for (at each call, the form is used if the name still finds it)."""
    words = command.words
    name = words[0].const
    cdef = interp.commands.get(name) if name is not None else None
    if cdef is None or cdef.fn is None or not cdef.min_args <= len(words) - 1 <= cdef.max_args:
        return _NEVER, None
    fn = cdef.fn
    factory = _FACTORIES.get(fn.__func__ if type(fn) is MethodType else fn)
    if factory is None:
        return _NEVER, None
    try:
        special = factory(command, cdef, interp)
    except SchedError:  # (a body that does not parse: the command says so when it runs)
        return _NEVER, None
    return (fn, special) if special is not None else (_NEVER, None)


# The closure of a command, generated per shape of command (see _maker): WORDS becomes the
# expression that builds its words. It is the interpreter's general path for one command:
# Ctrl-C, the words, the definition the name finds (its count of words checked when it is not
# the one found last time), the call, and the error's position, trace line or control flow's
# node on the way out.
_COMMAND_TEMPLATE = """\
def make(node, words, special_fn, special, {params}):
    checked = _NEVER  # the definition last found, and checked for the count of words

    def run(interp):
        nonlocal checked
        macro = None  # the macro called, once its body runs: errors then get a trace line
        try:
            if interp.interrupted:
                interp.interrupted = False
                raise Interrupted("interrupted")
            argv = {WORDS}
            cdef = interp.commands.get(argv[0])
            if cdef is not checked:
                if cdef is None or cdef.fn is None:
                    cdef = interp._missing(argv[0], cdef)
                if not cdef.min_args <= len(argv) - 1 <= cdef.max_args:
                    cdef.check_arity(argv)
                checked = cdef
            interp.cmd_words = words
            fn = cdef.fn
            if fn is special_fn:
                result = special(interp, argv)
            else:
                macro = cdef.macro
                result = fn(interp, argv)
            return result if result is not None else ""
        except SchedError as err:
            interp._locate(err, node())
            interp._trace(err, node(), macro)
            raise
        except ControlFlow as flow:
            if flow.command is None:
                flow.command = node()
            raise
        except RecursionError:
            raise _runaway(interp, node()) from None
        except Exception as exc:  # a bug in a command: report it as an error, never crash the shell
            raise _internal(interp, node(), exc) from None

    return run
"""


def _compile_command(command: Command, interp: Interp) -> Code:
    words = command.words
    special_fn, special = _special(command, interp)
    if len(words) > _MAX_SHAPE:
        return _maker("L")(weakref.ref(command), words, special_fn, special, _loop_builder(words))
    shape = "".join(_kind(w) for w in words)
    args: list[Any] = []
    for word, kind in zip(words, shape):
        if kind == "c":
            args.append(word.const)
        elif kind == "v":
            args += [word.parts[0].name, word.parts[0]]
        elif kind == "s":
            args.append(script_code(word.parts[0].script, interp))
        else:
            args.append(word)
    return _maker(shape)(weakref.ref(command), words, special_fn, special, *args)


def _general(command: Command | Block, words: list[Word] | None) -> Code:
    """The closure of a block, or of a command with {*}words (`words`), whose count of words
    is known only when it runs."""
    node = weakref.ref(command)  # (see _maker)
    del command

    def run(interp: Interp) -> str:
        command = node()
        macro = None
        try:
            if interp.interrupted:
                interp.interrupted = False
                raise Interrupted("interrupted")
            if words is None:
                return interp._eval_block(command)  # type: ignore[arg-type]
            argv, kept = interp._expanded(words)
            if not argv:
                return ""  # as in Tcl, a command that expands to no words does nothing
            cdef = interp.commands.get(argv[0])
            if cdef is None or cdef.fn is None:
                cdef = interp._missing(argv[0], cdef)
            if not cdef.min_args <= len(argv) - 1 <= cdef.max_args:
                cdef.check_arity(argv)
            interp.cmd_words = kept
            macro = cdef.macro
            result = cdef.fn(interp, argv)  # type: ignore[misc]
            return result if result is not None else ""
        except SchedError as err:
            interp._locate(err, command)
            interp._trace(err, command, macro)
            raise
        except ControlFlow as flow:
            if flow.command is None:
                flow.command = command
            raise
        except RecursionError:
            raise _runaway(interp, command) from None
        except Exception as exc:
            raise _internal(interp, command, exc) from None

    return run


def _runaway(interp: Interp, command: Command | Block) -> SchedError:
    return interp._locate(ScriptError("too many nested evaluations (infinite loop of calls?)"), command)


def _internal(interp: Interp, command: Command | Block, exc: Exception) -> SchedError:
    log.exception("internal error in command %r", command.name)
    err = ScriptError(f"internal error in command \"{command.name}\": {type(exc).__name__}: {exc}")
    return interp._locate(err, command)


# --- word builders -------------------------------------------------------------------------------

_MAX_SHAPE = 12
"""Commands with more words than this build them in a loop."""

_MAKERS: dict[str, Callable[..., Code]] = {}
_MAKERS_KEEP = 1024


def _kind(word: Word) -> str:
    """c: a constant; v: $name of a plain name; s: one [script]; w: any other word."""
    if word.const is not None:
        return "c"
    parts = word.parts
    if len(parts) == 1:
        part = parts[0]
        if type(part) is VarRef and part.index is None and "(" not in part.name and ":" not in part.name:
            return "v"
        if type(part) is CmdSub:
            return "s"
    return "w"


def _loop_builder(words: list[Word]) -> Callable[["Interp"], list[str]]:
    template = [w.const if w.const is not None else "" for w in words]
    steps = [(k, w) for k, w in enumerate(words) if w.const is None]

    def build(interp: Interp) -> list[str]:
        argv = template[:]
        for k, word in steps:
            argv[k] = interp.subst_word(word)
        return argv

    return build


def _maker(shape: str) -> Callable[..., Code]:
    """The maker of command closures for one shape of words ("L": built in a loop). Its
    arguments are a weak reference to the command (the node keeps its closure: a strong one
    would make each compiled node a reference cycle, freed only by the cyclic garbage
    collector; the node outlives every run of its closure), its words, its compiled form and the function that stands
    for, then per word: the constant (c), the name and the VarRef (v), the compiled script
    (s) or the Word (w); for "L", the builder."""
    make = _MAKERS.get(shape)
    if make is not None:
        return make
    params: list[str] = []
    items: list[str] = []
    for k, kind in enumerate(shape):
        a = f"a{k}"
        params.append(a)
        if kind == "c":
            items.append(a)
        elif kind == "v":  # a scalar of this frame, else the general way
            params.append(f"r{k}")
            items.append(f"(v if type(v := interp.frame.vars.get({a})) is str else interp._subst_part(r{k}))")
        elif kind == "s":
            items.append(f"{a}(interp)")
        elif kind == "w":
            items.append(f"interp.subst_word({a})")
        else:
            items.append(None)
    words = "build(interp)" if shape == "L" else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    source = _COMMAND_TEMPLATE.format(params="build" if shape == "L" else ", ".join(params), WORDS=words)
    namespace: dict[str, Any] = {"_NEVER": _NEVER, "Interrupted": Interrupted, "SchedError": SchedError,
                                 "ControlFlow": ControlFlow, "_runaway": _runaway, "_internal": _internal}
    exec(compile(source, f"<command {shape}>", "exec"), namespace)  # noqa: S102 (generated from the shape only)
    make = namespace["make"]
    if len(_MAKERS) < _MAKERS_KEEP:
        _MAKERS[shape] = make
    return make


# --- the compiled form of an ensemble's subcommand -----------------------------------------------


@compiles(Ensemble.dispatch)
def _ensemble(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """`dict incr d a`, `string length $s`: the subcommand named by a constant word, found once
    (by its exact name: a prefix still goes the general way) and its count of words checked
    once; the subcommand's function then runs as Ensemble.dispatch would run it."""
    words = command.words
    table = cdef.subcommands
    if len(words) < 2 or words[1].const is None or table is None:
        return None
    sub = table.get(words[1].const)
    if sub is None or sub.fn is None or not sub.min_args <= len(words) - 2 <= sub.max_args:
        return None
    return sub.fn
