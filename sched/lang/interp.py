"""The interpreter: walks the syntax tree, substitutes words, dispatches commands by name.

    interp = Interp()
    interp.eval("set x 1; expr {$x + 1}")      -> "2"
    interp.eval_file("jobs.sched")

Everything is a string. Commands come from one registry (psched.lang.registry), looked up by the
first word of each command. Control flow (`break`, `continue`, `return`, `skip`) travels as
ControlFlow exceptions that loops, macros and `catch` consume; errors are SchedError with the
position of the innermost failing command and, through macros, the chain of calls.

Variables live in frames. The global frame holds scalars (str; a Lazy still to be made, a
Growing that append and lappend grow in place) and arrays (dict); `env` is an array that mirrors
the process environment. A macro's frame is transparent (names resolve to
globals unless declared `local`); a proc's frame is opaque (names are local unless `global`).

Scripts and commands run as closures compiled once per node at their first run
(psched.lang.compile); eval_command and run_script run them. Every nested run of a script (a
body, a [substitution], a macro call) counts the depth and refuses more than MAX_DEPTH levels
with a ScriptError. Python's own
recursion limit is raised (Python 3.11+, where Python calls do not use the C stack) so that
MAX_DEPTH levels fit; a RecursionError that still happens becomes a ScriptError as well.
Strings run as scripts (eval, subst, a body that was not a braced word) are labelled EVAL_FILE
in positions, and an error that comes out of another file or such a string gets a line
"while executing CMD at FILE:LINE:COL" for the command that ran it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, TextIO

from .lazyre import lazy_compile
from .channels import Channels, os_error
from .compile import MAX_DEPTH, command_code, script_code
from .errors import (Break, ControlFlow, Continue, ExprError, Interrupted, OtherCode, ParseError, Pos, Return,
                     SchedError, ScriptError, Skip, error_info)
from .expr import Expr, compile_expr, format_value
from .nodes import Block, CmdSub, Command, Script, Source, Text, VarRef, Word
from .parser import parse, parse_at, parse_body, parse_cached
from .registry import BUILTINS, CommandDef, Macro, Registry, parse_usage
from .scripttext import read_script_file
from .tcllist import backslash_subst, join_list, split_list

if TYPE_CHECKING:
    from .clock import Clock  # (only named: a run that never reads the time does not load it)


__all__ = ["Interp", "Frame", "EnvArray", "Deferred", "Lazy", "Growing", "split_var_name", "script_at", "word_origin", "MAX_DEPTH"]

EVAL_FILE = "<eval>"
"""The file name in the positions of a string run as a script (its lines count from 1)."""

_RECURSION_FLOOR = 8000
"""Python frames MAX_DEPTH levels may need (a level is 3 to 10 frames), with room for callers."""

READ_CHECKS: list[Callable[[Script], None]] = []
"""Checks run on every script when it is read, before any of it runs (e.g. task directives)."""

_ARRAY_NAME = lazy_compile(r"^([^()]+)\((.*)\)$", re.S)


def split_var_name(name: str) -> tuple[str, str | None]:
    """`a(k)` -> ("a", "k"); `a` -> ("a", None)."""
    if name.endswith(")"):
        m = _ARRAY_NAME.match(name)
        if m:
            return m.group(1), m.group(2)
    return name, None


class EnvArray(MutableMapping):
    """The `env` array: reads and writes go straight to the process environment."""

    def __getitem__(self, key: str) -> str:
        return os.environ[key]

    def __setitem__(self, key: str, value: str) -> None:
        os.environ[key] = value

    def __delitem__(self, key: str) -> None:
        del os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


class Deferred(Protocol):
    """Where a lazily-filled variable's value comes from (e.g. a job's output, fetched only
    when a macro reads it). May raise ScriptError, which the read then raises."""

    def value(self) -> str: ...


class Lazy:
    """A scalar variable's value still to be made: `frame.vars[name] = Lazy(source)`. Its first
    read (get_var) asks `source.value()` once and keeps the text in its place; setting or
    unsetting the variable never asks. Reading a variable that holds a plain string never
    looks here (only get_var's slow path does)."""

    __slots__ = ("source",)

    def __init__(self, source: Deferred):
        self.source = source


class Growing:
    """A scalar variable's value that `append` and `lappend` grow at its end, kept in the
    variable's slot as Lazy is (`Interp.growing` puts it there). `text` is the value; `is_list`
    says that lappend made it, a canonical list that need not be read again.

    `add` does what Tcl does with an unshared object: the text is extended in place when nothing
    else holds it (CPython extends a string in place on `text += piece` when the local being
    added to is its only reference), and copied first when something does (`set b $a`, a result
    still held), so no value anyone has read ever changes. A loop of appends is then linear.
    """

    __slots__ = ("text", "is_list")

    def __init__(self, text: str, is_list: bool = False):
        self.text = text
        self.is_list = is_list

    def add(self, piece: str) -> str:
        text = self.text
        self.text = ""  # drop this reference: the local is then the only one when unshared
        text += piece
        self.text = text
        return text


_SCALARS = (str, Lazy, Growing)
"""What a scalar variable's slot holds (an array's holds a mapping, a link's a _Link)."""


class _Link:
    """A name in a frame that stands for a variable of another frame (`global`, `upvar`)."""

    __slots__ = ("vars", "name", "element")

    def __init__(self, vars: dict, name: str, element: bool = False):
        self.vars = vars
        self.name = name
        self.element = element
        """`vars` is an array's table and `name` a key in it (`upvar a(k) x`)."""


_NO_NAMES: frozenset[str] = frozenset()


class Frame:
    """Variables of one level of calls.

    `caller` is the frame that was current when this one was entered and `level` its depth
    (0 for the globals): `upvar`, `uplevel` and `info level` count levels along them. `call`
    is the words of the macro or proc call that made the frame. `declared` (the names a
    transparent frame keeps local) is only a set of its own in a transparent frame: an opaque
    one has nothing to keep local, everything is.
    """

    __slots__ = ("vars", "transparent", "declared", "name", "caller", "level", "call")

    def __init__(self, name: str = "", transparent: bool = False, vars: dict[str, Any] | None = None,
                 caller: "Frame | None" = None, call: list[str] | None = None):
        self.vars: dict[str, Any] = {} if vars is None else vars
        self.transparent = transparent  # macro: unknown names are globals
        self.declared: set[str] | frozenset[str] = set() if transparent else _NO_NAMES  # macro: names that are local anyway
        self.name = name
        self.caller = caller
        self.level = 0 if caller is None else caller.level + 1
        self.call = call


def _raise_recursion_limit() -> None:
    # Only where deep Python recursion costs no C stack (3.11+); elsewhere keep Python's limit
    # and let the RecursionError fallback in eval_command report runaway recursion.
    if sys.version_info >= (3, 11) and sys.getrecursionlimit() < _RECURSION_FLOOR:
        sys.setrecursionlimit(_RECURSION_FLOOR)


class Interp:
    """One interpreter: commands, variables, queues and where output goes."""

    def __init__(self, registry: Registry | None = None, stdout: TextIO | None = None):
        _raise_recursion_limit()
        self.commands: dict[str, CommandDef] = dict((registry or BUILTINS).commands)
        self.globals = Frame("global")
        self.globals.vars["env"] = EnvArray()
        self.frame = self.globals
        self.depth = 0
        self.cmd_words: list[Word] = []  # the words of the command now being called
        self.stdout: TextIO = stdout if stdout is not None else sys.stdout
        self.queues: dict[str, list[str]] = {}
        self.channels = Channels()  # the files `open` opened (psched.lang.channels)
        self.extensions: dict[str, Any] = {}  # state of command families (tasks, scheduler, shell)
        # Hooks the layers above hand in (named here, so that no layer repeats a string key):
        self.clock: Clock | None = None  # the time `clock` reads (a test's FakeClock, the scheduler's)
        self.quit_checks: list[Callable[[Interp], str | None]] = []  # a reason not to leave yet, or None
        self.exit_hooks: list[Callable[[Interp], None]] = []  # run once when the program leaves
        self.completers: list[Callable[[Interp, list[str], str], Iterable[str]]] = []  # words for the prompt
        self.interactive = False  # true while commands come from the interactive prompt
        self.current_file = "<string>"
        self.interrupted = False  # set by Ctrl-C; the next command raises "interrupted"
        self.native = 0  # > 0 while a long native call runs that Ctrl-C may stop at once (regexp)
        self.checkers: list[Callable[[Script], None]] = list(READ_CHECKS)
        # The expression being evaluated, when its text is as written in a source: (text, Pos
        # of its first character, the Source). A [script] in it is then parsed at its place.
        self._expr_at: tuple[str, Pos, Source | None] | None = None
        self._within: dict[tuple[int, int], tuple[Word, list[Script] | None]] = {}  # script_within's

    # --- output -------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Where `echo` and `puts` send their text (the shell redirects it above the prompt)."""
        self.stdout.write(text)
        flush = getattr(self.stdout, "flush", None)
        if flush is not None:
            flush()

    # --- evaluation ---------------------------------------------------------------------------

    def eval(self, text: str, file: str = "<string>", line0: int = 1) -> str:
        """Parse and run a script (its first line is line `line0` of `file`); `return` at the
        top level ends it with its value."""
        script = self.read(text, file, line0)
        saved = self.current_file
        self.current_file = file
        try:
            return self.run_toplevel(script)
        finally:
            self.current_file = saved

    def eval_file(self, path: str) -> str:
        """Read and run a file (`source`)."""
        try:
            text = read_script_file(path)
        except OSError as err:
            raise os_error(f'couldn\'t read file "{path}"', err) from None
        saved = self.current_file
        self.current_file = path
        try:
            return self.run_toplevel(self.read(text, path))
        finally:
            self.current_file = saved

    def read(self, text: str, file: str = "<string>", line0: int = 1) -> Script:
        """Parse a script (its first line is line `line0` of `file`) and run the read-time
        checks on it."""
        script = parse(text, file, line0)
        try:
            for check in self.checkers:
                check(script)
        except RecursionError:  # the parser limits nesting; this is only a safety net
            raise ParseError("script nested too deeply to check", pos=Pos(file, 1, 1)) from None
        return script

    def run_toplevel(self, script: Script) -> str:
        try:
            return self.run_script(script)
        except Return as ret:
            ret.level = 1  # the top of a file or of the prompt: there is no level above to leave
            try:
                return self.finish_return(ret)
            except Return as again:
                return again.value
            except (Break, Continue) as flow:
                raise self.stray_flow(flow) from None
            except OtherCode as other:
                raise ScriptError(f"command returned bad code: {other.code}") from None
        except (Break, Continue, Skip) as flow:
            raise self.stray_flow(flow) from None
        except OtherCode as other:
            raise ScriptError(f"command returned bad code: {other.code}") from None
        except SchedError as err:
            if not isinstance(err, Interrupted):
                self.record_error(err)
            raise

    def finish_return(self, ret: Return) -> str:
        """What a `return` means to the macro, proc or file it leaves: its value, or (with
        `-code`) an error, break, continue or return of the level it reaches."""
        if ret.level > 1:
            raise Return(ret.value, ret.code, ret.level - 1, ret.options)
        code = ret.code
        if code == 0:
            return ret.value
        if code == 1:
            err = ScriptError(ret.value)
            err.errorcode = ret.options.get("-errorcode", "NONE")
            err.errorinfo = ret.options.get("-errorinfo")
            raise err
        if code == 2:
            raise Return(ret.value, 0, 1, ret.options)
        flow: ControlFlow = Break() if code == 3 else Continue() if code == 4 else OtherCode(code, ret.value)
        flow.value = ret.value
        raise flow

    def record_error(self, err: SchedError) -> None:
        """Keep an error's details where Tcl keeps them: $::errorInfo and $::errorCode."""
        self.globals.vars["errorInfo"] = error_info(err)
        self.globals.vars["errorCode"] = err.errorcode

    def stray_flow(self, flow: ControlFlow) -> ScriptError:
        """The error for a break/continue/skip that reached a level that cannot take it."""
        if isinstance(flow, Skip):
            err = ScriptError('invoked "skip" outside of a task.exec macro')
        else:
            err = ScriptError(f'invoked "{"break" if isinstance(flow, Break) else "continue"}" outside of a loop')
        if flow.command is not None:
            self._locate(err, flow.command)
        return err

    def run_script(self, script: Script) -> str:
        """Run the commands of a script one level deeper; the result is the last command's.
        The script runs as closures compiled once (psched.lang.compile)."""
        code = script.code
        return (code if code is not None else script_code(script, self))(self)

    def interrupt(self) -> None:
        """Ask the running script to stop at its next command (Ctrl-C); inside a native call
        that may take long (see `interruptible`) stop at once."""
        self.interrupted = True
        if self.native:
            self.interrupted = False
            raise Interrupted("interrupted")

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Around a native call that checks for signals while it runs (a regexp match): Ctrl-C
        raises Interrupted from inside it rather than waiting for the next command."""
        if self.interrupted:
            self.interrupted = False
            raise Interrupted("interrupted")
        self.native += 1
        try:
            yield
        finally:
            self.native -= 1

    def eval_command(self, command: Command | Block) -> str:
        """Run one command (or block) of a script: its compiled closure (psched.lang.compile)."""
        code = command.plan
        if code is None:
            code = command_code(command, self)
        return code(self)

    def _expanded(self, words: list[Word]) -> tuple[list[str], list[Word]]:
        """The words of a command with {*}words expanded (and words to match, for script_of:
        an expanded word stands for none of the values)."""
        argv: list[str] = []
        kept: list[Word] = []
        for w in words:
            value = w.const if w.const is not None else self.subst_word(w)
            if w.expand:
                items = split_list(value)
                argv.extend(items)
                kept.extend([_NO_WORD] * len(items))
            else:
                argv.append(value)
                kept.append(w)
        return argv, kept

    def _locate(self, err: SchedError, command: Command | Block) -> SchedError:
        header = command.header if type(command) is Block else command
        if err.command_text is None:
            err.command_text = header.text_of(0)
        if err.pos is None:
            err.pos = header.pos
        if err.source_line is None and err.pos.file == header.pos.file:
            err.source_line = header.source.line(err.pos.line)
        if isinstance(err, ScriptError) and err.command is None:
            err.command = header.name
        return err

    @staticmethod
    def _trace(err: SchedError, command: Command | Block, macro: Any) -> None:
        """Add "while executing" for a macro call, or for a command whose error comes from
        another file or from a string run as a script (where the error's position alone
        would not say where in this file it happened)."""
        header = command.header if type(command) is Block else command
        if macro is None:
            where = err.trace[-1][1] if err.trace else err.pos
            if where is None or where.file == header.pos.file:
                return
        err.trace.append((f'"{header.name}"', header.pos))

    def _missing(self, name: str, cdef: CommandDef | None) -> CommandDef:
        if cdef is not None and cdef.block is not None:
            raise ScriptError(f'"{name}" opens a block: write "{cdef.usage.text}" on a line of its own, then the body, then "end"')
        err = ScriptError(f'invalid command name "{name}"')
        err.errorcode = join_list(["TCL", "LOOKUP", "COMMAND", name])
        raise err

    def _eval_block(self, block: Block) -> str:
        name = block.header.words[0].const
        cdef = self.commands.get(name) if name is not None else None
        if cdef is None or cdef.block is None:
            raise ScriptError(f'"{name}" has no block form')
        return cdef.block(self, block)

    # --- substitution -------------------------------------------------------------------------

    def subst_word(self, word: Word) -> str:
        if word.const is not None:
            return word.const
        parts = word.parts
        if len(parts) == 1:
            return self._subst_part(parts[0])
        return "".join([self._subst_part(p) for p in parts])

    def _subst_part(self, part: Text | VarRef | CmdSub) -> str:
        kind = type(part)
        if kind is Text:
            return part.value
        if kind is VarRef:
            try:
                index = None if part.index is None else self.subst_word(part.index)
                return self.get_var(part.name, index)
            except SchedError as err:
                if err.pos is None:
                    err.pos = part.pos
                raise
        return self.run_script(part.script)

    def eval_nested(self, script: Script) -> str:
        """Run a script one level deeper (command substitution, bodies): run_script, which
        counts the depth."""
        return self.run_script(script)

    def substitute(self, text: str, variables: bool = True, commands: bool = True, backslashes: bool = True) -> str:
        """Substitute $vars, [commands] and backslashes in a string (`subst`, which may leave
        some kinds out). As in Tcl, a command's `break` ends the substitution there, its
        `continue` substitutes nothing and its `return` substitutes the returned value."""
        out: list[str] = []
        i, n = 0, len(text)
        special = "".join(c for c, on in (("$", variables), ("[", commands), ("\\", backslashes)) if on)
        while i < n:
            c = text[i]
            if c == "$" and variables:
                word = _var_word(text, i)
                if word is None:
                    out.append("$")
                    i += 1
                    continue
                value, i = self._subst_var_text(word, i)
                out.append(value)
            elif c == "[" and commands:
                end = _matching_bracket(text, i)
                try:
                    out.append(self.eval_string(text[i + 1:end]))
                except Break:
                    break
                except Continue:
                    pass
                except Return as ret:
                    out.append(ret.value)
                i = end + 1
            elif c == "\\" and backslashes and i + 1 < n:
                m = re.match(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|\n[ \t]*|.)", text[i:], re.S)
                out.append(backslash_subst(m.group(0)))
                i += m.end()
            else:
                j = i + 1
                while j < n and text[j] not in special:
                    j += 1
                out.append(text[i:j])
                i = j
        return "".join(out)

    def _subst_var_text(self, word: str, start: int) -> tuple[str, int]:
        ref = parse_cached(word, EVAL_FILE).commands[0].words[0]
        return self.subst_word(ref), start + len(word)

    def eval_string(self, text: str) -> str:
        """Run a string as a script (eval, a computed body); its positions are EVAL_FILE's."""
        return self.run_script(parse_cached(text, EVAL_FILE))

    def eval_script(self, text: str) -> str:
        """Run a [script] of the expression being evaluated (expr's context protocol).

        When the expression is as written in a file, the script is found in it and parsed at
        its place, so that its errors point into the file."""
        at = self._expr_at
        if at is None:
            return self.run_script(parse_cached(text, EVAL_FILE))
        expr_text, pos, source = at
        offset = expr_text.find("[" + text + "]")
        if offset < 0:
            return self.run_script(parse_cached(text, EVAL_FILE))
        script = parse_at(text, _advance(pos, expr_text, offset + 1), source)
        self._expr_at = None  # what runs inside is not this expression
        try:
            return self.run_script(script)
        finally:
            self._expr_at = at

    def script_of(self, argv: list[str], index: int) -> Script:
        """The parsed script for argument `index` of the command now being called.

        When the argument came from a braced word, its parse is cached on the word and its
        positions are absolute; otherwise the text is parsed (cached by text). Call it before
        running anything nested: the current command's words change when another command runs.
        """
        return script_at(self.cmd_words, argv, index, self.current_file)

    def script_within(self, argv: list[str], index: int, parts: list[str]) -> list[Script] | None:
        """Scripts that are elements of argument `index` (a braced list of bodies: `switch`'s),
        parsed at their places in the file, or None when they cannot be found there as written
        (the caller then runs them as strings)."""
        words = self.cmd_words
        if index >= len(words) or not words[index].braced or words[index].const != argv[index]:
            return None
        word = words[index]
        key = (id(word), len(parts))
        hit = self._within.get(key)
        if hit is not None and hit[0] is word:
            return hit[1]
        if len(self._within) >= 4096:
            self._within.clear()
        found = self._place_within(word, argv[index], parts)
        self._within[key] = (word, found)  # keeps the word alive, so its id is not reused meanwhile
        return found

    def _place_within(self, word: Word, value: str, parts: list[str]) -> list[Script] | None:
        text = word.raw if word.raw is not None else value
        start = word.body_pos or word.pos
        scripts: list[Script] = []
        cursor = 0
        for part in parts:
            offset = text.find(part, cursor)
            if offset < 0:
                return None
            scripts.append(parse_at(part, _advance(start, text, offset), word.source))
            cursor = offset + len(part)
        return scripts

    # --- expressions --------------------------------------------------------------------------

    def expr(self, text: str, pos: Pos | None = None, exact: bool = False, source: Source | None = None) -> Any:
        """Evaluate an expression to a Python value (int, float or str).

        `pos` is where the expression is in the source. With `exact`, it is where `text`
        starts and the text is as written there (in `source`), so that a syntax error points
        at its character and an error in a [script] inside at the command in the file.
        """
        return self.evaluate(text, False, pos, exact, source)

    def condition(self, text: str, pos: Pos | None = None, exact: bool = False, source: Source | None = None) -> bool:
        """The truth of an expression (if, while): numbers, true/false, yes/no, on/off."""
        return self.evaluate(text, True, pos, exact, source)

    def expr_arg(self, argv: list[str], index: int, words: list[Word] | None = None) -> Any:
        """expr() of argument `index` of the command now being called (whose words are
        `words`, by default the current command's), placed where the word stands."""
        text = argv[index]
        return self.evaluate(text, False, *word_origin(words or self.cmd_words, index, text))

    def condition_arg(self, argv: list[str], index: int, words: list[Word] | None = None) -> bool:
        """condition() of argument `index` of the command now being called, as expr_arg."""
        text = argv[index]
        return self.evaluate(text, True, *word_origin(words or self.cmd_words, index, text))

    def evaluate(self, text: str, truth: bool, pos: Pos | None = None, exact: bool = False,
                 source: Source | None = None, compiled: Expr | None = None) -> Any:
        """The one way an expression is evaluated (expr, condition and the compiled forms of
        expr, if, while and for, which hand in the expression they compiled): its value, or
        with `truth` its truth as a condition. Where it stands (`pos`, `exact`, `source`, as
        in expr) places its errors, and a [script] inside it when it has one."""
        try:
            ex = compiled if compiled is not None else compile_expr(text)
            if "[" not in text:  # no [script] in it, which is what needs to know where the text is
                return ex.truth(self) if truth else ex.evaluate(self)
            saved = self._expr_at
            self._expr_at = (text, pos, source) if exact and pos is not None else None
            try:
                return ex.truth(self) if truth else ex.evaluate(self)
            finally:
                self._expr_at = saved
        except SchedError as err:
            self._expr_error(err, text, pos, exact)
            raise

    def expr_str(self, text: str) -> str:
        return format_value(self.expr(text))

    @staticmethod
    def _expr_error(err: SchedError, text: str, pos: Pos | None, exact: bool) -> None:
        if err.pos is None and pos is not None:
            if exact and isinstance(err, ExprError) and err.offset is not None and 0 <= err.offset <= len(text):
                pos = _advance(pos, text, err.offset)
            err.pos = pos
        if isinstance(err, ExprError) and err.message.startswith("divide by zero"):
            err.errorcode = "ARITH DIVZERO {divide by zero}"  # what Tcl's `trap` sees
        elif isinstance(err, ExprError) and err.message.startswith("domain error"):
            err.errorcode = "ARITH DOMAIN {domain error: argument not in valid range}"
        if isinstance(err, ExprError) and "in expression" not in err.message:
            err.message = f'{err.message} in expression "{_clip(text)}"'
            err.args = (err.message,)

    def header_expr_text(self, header: Command, first: int = 1) -> str:
        """The expression of a block header (`if $x > 1`, `while {$i < 3}`), as written."""
        words = header.words[first:]
        if len(words) == 1 and words[0].braced:
            return words[0].const or ""
        return _joined_lines(header.text_of(first))

    def header_condition(self, header: Command, first: int = 1) -> bool:
        """The truth of a block header's expression (`if $x > 1`, `elif`, `while`)."""
        words = header.words
        if len(words) == first + 1 and words[first].braced:
            word = words[first]
            return self.condition(word.const or "", word.body_pos, word.raw is None, word.source)
        text = header.text_of(first)
        joined = _joined_lines(text)
        return self.condition(joined, words[first].pos, joined is text, header.source)

    # expr's context protocol
    def get_var(self, name: str, index: str | None = None) -> str:
        if index is None:
            value = self.frame.vars.get(name)
            if "(" not in name and ":" not in name:  # what the general way below finds, found sooner
                if type(value) is str:
                    return value  # a scalar of this frame
                if type(value) is _Link:
                    value = value.vars.get(value.name)
                    if type(value) is str:
                        return value  # a scalar of another frame (global, upvar)
                if type(value) is Growing:
                    return value.text
            name, index = split_var_name(name)
        vars, key = self._scope(name)
        value = vars.get(key)
        if value is None:
            label = name if index is None else f"{name}({index})"
            err = ScriptError(f'can\'t read "{label}": no such variable')
            err.errorcode = join_list(["TCL", "LOOKUP", "VARNAME", name])
            raise err
        if index is None:
            if isinstance(value, str):
                return value
            if type(value) is Growing:
                return value.text
            if type(value) is Lazy:  # the slow path only: filled on its first read
                text = vars[key] = value.source.value()
                return text
            raise ScriptError(f'can\'t read "{name}": variable is array')
        if isinstance(value, _SCALARS):
            raise ScriptError(f'can\'t read "{name}({index})": variable isn\'t array')
        try:
            return value[index]
        except KeyError:
            err = ScriptError(f'can\'t read "{name}({index})": no such element in array')
            err.errorcode = "TCL READ VARNAME"
            raise err from None

    # --- variables ----------------------------------------------------------------------------

    def _scope(self, name: str) -> tuple[dict, str]:
        """The dict that holds `name` in the current frame, and the key in it."""
        vars, key, _ = self._resolve(name)
        return vars, key

    def _resolve(self, name: str) -> tuple[dict, str, bool]:
        """`_scope`, and whether the dict is an array's table (`name` is linked to an element)."""
        frame = self.frame
        if name.startswith("::"):
            return self.globals.vars, name[2:], False
        vars = frame.vars
        value = vars.get(name)
        if value is None and frame.transparent and name not in frame.declared:
            vars = self.globals.vars
            value = vars.get(name)
        if type(value) is _Link:
            return value.vars, value.name, value.element
        return vars, name, False

    def set_var(self, name: str, value: str, index: str | None = None) -> str:
        if index is None:
            if "(" not in name and ":" not in name:  # the common cases, as the general way below does them
                frame = self.frame
                current = frame.vars.get(name)
                if type(current) is str or (current is None and not frame.transparent):
                    frame.vars[name] = value
                    return value
                if type(current) is _Link:
                    vars, key = current.vars, current.name
                    current = vars.get(key)
                    if current is None or type(current) is str:
                        vars[key] = value
                        return value
            name, index = split_var_name(name)
        vars, key = self._scope(name)
        if index is None:
            current = vars.get(key)
            if current is not None and not isinstance(current, _SCALARS):
                raise ScriptError(f'can\'t set "{name}": variable is array')
            vars[key] = value
        else:
            current = vars.get(key)
            if current is None:
                current = vars[key] = {}
            elif isinstance(current, _SCALARS):
                raise ScriptError(f'can\'t set "{name}({index})": variable isn\'t array')
            current[index] = value
        return value

    def growing(self, name: str) -> Growing | None:
        """Scalar variable `name` ready to grow at its end (`append`, `lappend`): the Growing
        kept in its slot, put there now if the slot holds a string (made empty when the
        variable is missing). None for an array element: the command sets it whole."""
        base, index = split_var_name(name) if "(" in name else (name, None)
        if index is not None:
            return None
        vars, key, element = self._resolve(base)
        if element:  # (an array's table holds strings only: `array get` hands them out)
            return None
        value = vars.get(key)
        if type(value) is Growing:
            return value
        if value is not None and not isinstance(value, _SCALARS):
            raise ScriptError(f'can\'t set "{name}": variable is array')
        text = "" if value is None else self.get_var(name)
        value = vars[key] = Growing(text)
        return value

    def var_exists(self, name: str) -> bool:
        base, index = split_var_name(name)
        vars, key = self._scope(base)
        value = vars.get(key)
        if value is None:
            return False
        if index is None:
            return True
        return not isinstance(value, _SCALARS) and index in value

    def unset_var(self, name: str, nocomplain: bool = False) -> None:
        base, index = split_var_name(name)
        vars, key = self._scope(base)
        value = vars.get(key)
        if value is None or (index is not None and (isinstance(value, _SCALARS) or index not in value)):
            if nocomplain:
                return
            why = ("no such variable" if value is None else "variable isn't array" if isinstance(value, _SCALARS)
                   else "no such element in array")
            raise ScriptError(f'can\'t unset "{name}": {why}')
        if index is None:
            del vars[key]
        else:
            del value[index]

    def array(self, name: str, create: bool = False) -> MutableMapping | None:
        vars, key = self._scope(name)
        value = vars.get(key)
        if value is None and create:
            value = vars[key] = {}
        if value is None or isinstance(value, _SCALARS):
            return None
        return value

    def link_global(self, name: str) -> None:
        """`global name`: in this frame, `name` means the global variable."""
        if self.frame is self.globals:
            return
        if "(" in name and split_var_name(name)[1] is not None:
            raise ScriptError(f'bad variable name "{name}": can\'t create a scalar variable that looks like an array element')
        name = name[2:] if name.startswith("::") else name  # `global ::x` links x, as in Tcl
        self.frame.vars[name] = _Link(self.globals.vars, name)
        if self.frame.transparent:
            self.frame.declared.add(name)

    def link_var(self, local: str, target: Frame, other: str) -> None:
        """`upvar`: in this frame, `local` means variable `other` of frame `target`."""
        if "(" in local and split_var_name(local)[1] is not None:
            raise ScriptError(f'bad variable name "{local}": can\'t create a scalar variable that looks like an array element')
        base, index = split_var_name(other) if "(" in other else (other, None)
        if base.startswith("::"):
            vars, key = self.globals.vars, base[2:]
        else:
            vars, key = target.vars, base
            if key not in vars and target.transparent and key not in target.declared:
                vars = self.globals.vars
        link = vars.get(key)
        element = False
        if type(link) is _Link:
            vars, key, element = link.vars, link.name, link.element
        if index is not None:  # an element: the link is to a key of the array's own table
            array = vars.get(key)
            if array is None:
                array = vars[key] = {}
            elif isinstance(array, _SCALARS):
                raise ScriptError(f'can\'t access "{other}": variable isn\'t array')
            vars, key, element = array, index, True
        frame = self.frame
        if vars is frame.vars and key == local:
            raise ScriptError(f'can\'t upvar from variable to itself')
        existing = frame.vars.get(local)
        if existing is not None and type(existing) is not _Link:
            raise ScriptError(f'variable "{local}" already exists')
        frame.vars[local] = _Link(vars, key, element)
        if frame.transparent:
            frame.declared.add(local)

    def declare_local(self, name: str, value: str | None = None) -> None:
        """`local name ?value?`: in a macro, `name` is this call's own variable."""
        frame = self.frame
        if frame.transparent:
            frame.declared.add(name)
        if value is not None:
            frame.vars[name] = value
        elif name not in frame.vars:
            frame.vars.pop(name, None)

    def visible_vars(self) -> list[str]:
        names = set(k for k, v in self.frame.vars.items() if v is not None)
        if self.frame.transparent:
            names |= set(self.globals.vars)
        return sorted(names)

    # --- macros -------------------------------------------------------------------------------

    def define_macro(self, macro: Macro) -> None:
        usage = parse_usage(macro.usage_line())
        call = _proc_caller(macro) if macro.kind == "proc" else _macro_caller(macro)
        cdef = CommandDef(macro.name, usage, f"{macro.kind} defined at {macro.defined_at}" if macro.defined_at else macro.kind,
                          fn=call, macro=macro)
        if macro.kind == "macro":  # a macro takes any number of words: $0 counts them
            cdef.max_args = 1 << 30
            cdef.min_args = 0
        self.commands[macro.name] = cdef

    def call_macro(self, macro: Macro, argv: list[str]) -> str:
        frame = Frame(macro.name, transparent=macro.kind == "macro")
        frame.call = argv
        vars = frame.vars
        args = argv[1:]
        if macro.kind == "macro":
            vars["0"] = str(len(args))
            for i, value in enumerate(args, 1):
                vars[str(i)] = value
            frame.declared.update(vars)
            for i, (pname, default) in enumerate(macro.params):
                vars[pname] = args[i] if i < len(args) else (default or "")
                frame.declared.add(pname)
        else:
            _bind_proc_args(macro, args, vars)
        return self.run_in_frame(frame, macro.body)

    def run_in_frame(self, frame: Frame, body: Script) -> str:
        """Run a body in a new frame (a macro call, a task.exit macro)."""
        saved = self.frame
        frame.caller, frame.level = saved, saved.level + 1
        self.frame = frame
        try:
            return self.run_script(body)
        except Return as ret:
            self.frame = saved
            return self.finish_return(ret)
        except (Break, Continue) as flow:
            raise self.stray_flow(flow) from None
        except OtherCode as other:
            if frame.call is not None:  # a proc's caller gets the code, as in Tcl
                raise
            raise ScriptError(f"command returned bad code: {other.code}") from None
        finally:
            self.frame = saved

    # --- loops --------------------------------------------------------------------------------

    def loop_body(self, body: Script) -> bool:
        """Run a loop body once; False means `break`. Ctrl-C stops even a loop with an empty body."""
        if self.interrupted:
            self.interrupted = False
            raise Interrupted("interrupted")
        code = body.code
        try:
            (code if code is not None else script_code(body, self))(self)  # (run_script)
        except Break:
            return False
        except Continue:
            pass
        return True


def _macro_caller(macro: Macro) -> Callable[[Interp, list[str]], str]:
    def call(interp: Interp, argv: list[str]) -> str:
        return interp.call_macro(macro, argv)

    return call


def _proc_caller(macro: Macro) -> Callable[[Interp, list[str]], str]:
    """A proc's command: call_macro and run_in_frame made one, for the calls that make up
    most of a Tcl program's time (the same steps, in the same order)."""
    names = tuple(pname for pname, _ in macro.params)
    exact = len(names) + 1 if not macro.variadic and all(d is None for _, d in macro.params) else -1
    body = macro.body
    name = macro.name

    def call(interp: Interp, argv: list[str]) -> str:
        saved = interp.frame
        if len(argv) == exact:
            frame = Frame(name, False, dict(zip(names, argv[1:])), saved, argv)
        else:
            frame = Frame(name, False, None, saved, argv)
            _bind_proc_args(macro, argv[1:], frame.vars)
        interp.frame = frame
        try:
            code = body.code  # (it runs the body one level deeper)
            return (code if code is not None else script_code(body, interp))(interp)
        except Return as ret:
            interp.frame = saved
            return interp.finish_return(ret)
        except (Break, Continue) as flow:
            raise interp.stray_flow(flow) from None
        finally:
            interp.frame = saved

    return call


def _bind_proc_args(macro: Macro, args: list[str], vars: dict) -> None:
    params = macro.params
    n = len(params)
    for i, (pname, default) in enumerate(params):
        if i < len(args):
            vars[pname] = args[i]
        elif default is not None:
            vars[pname] = default
        else:
            raise ScriptError(f'wrong # args: should be "{macro.usage_line()}"')
    if macro.variadic:
        vars["args"] = join_list(args[n:])
    elif len(args) > n:
        raise ScriptError(f'wrong # args: should be "{macro.usage_line()}"')


def script_at(words: list[Word], argv: list[str], index: int, file: str) -> Script:
    """The parsed script for argument `index` of a command whose words are `words` and
    `argv` substituted (Interp.script_of; a compiled form calls it with its constant words)."""
    if index < len(words):
        word = words[index]
        if word.braced and word.const == argv[index]:
            return parse_body(word, file)
    return parse_cached(argv[index], EVAL_FILE)


def word_origin(words: list[Word], index: int, value: str) -> tuple[Pos | None, bool, Source | None]:
    """Where argument `index` (whose value is `value`) of a command stands, whether that is
    exactly where its text starts as written (a braced word), and the source it is in:
    the last arguments of Interp.expr() and Interp.condition()."""
    if index >= len(words):
        return None, False, None
    word = words[index]
    if word.braced and word.const == value:
        return (word.body_pos or word.pos), word.raw is None, word.source
    return word.pos, False, None


_NO_WORD = Word((Text(""),), Pos(EVAL_FILE, 1, 1), 0, 0)
"""Stands for the words an expansion made (none of them is a braced word of the source)."""

_CONTINUATION = lazy_compile(r"\\\r?\n[ \t]*")


def _joined_lines(text: str) -> str:
    """A header's text with its backslash-newline continuations made blanks (the same text
    when it has none)."""
    return _CONTINUATION.sub(" ", text) if "\\\n" in text or "\\\r\n" in text else text


def _advance(pos: Pos, text: str, offset: int) -> Pos:
    """The position of text[offset] when text starts at `pos`."""
    newlines = text.count("\n", 0, offset)
    if not newlines:
        return Pos(pos.file, pos.line, pos.column + offset)
    return Pos(pos.file, pos.line + newlines, offset - text.rfind("\n", 0, offset))


def _clip(text: str, limit: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


_VAR_TEXT = lazy_compile(r"\$(\{[^}]*\}|(::)?[A-Za-z0-9_]+(::[A-Za-z0-9_]+)*(\([^)]*\))?)")


def _var_word(text: str, i: int) -> str | None:
    m = _VAR_TEXT.match(text, i)
    return m.group(0) if m else None


def _matching_bracket(text: str, i: int) -> int:
    """The index of the `]` that closes the `[` at text[i], by the rules of the script inside:
    a `]` in a braced or quoted word, after a backslash or in a comment closes nothing."""
    stack = ["["]
    j, n = i + 1, len(text)
    word_start = cmd_start = True
    while j < n:
        c = text[j]
        top = stack[-1]
        if c == "\\":
            j += 2
            word_start = cmd_start = False
            continue
        if top == "{":
            if c == "{":
                stack.append("{")
            elif c == "}":
                stack.pop()
        elif top == '"' and c != "[":
            if c == '"':
                stack.pop()
        elif c == "[":
            stack.append("[")
            word_start = cmd_start = True
        elif c == "]":
            stack.pop()
            if not stack:
                return j
        elif c in " \t\r\f\v":
            word_start = True
        elif c in "\n;":
            word_start = cmd_start = True
        elif c == "#" and cmd_start:
            while j < n and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            continue
        else:
            if word_start and c in '{"':
                stack.append(c)
            word_start = cmd_start = False
        j += 1
    raise ParseError("missing close-bracket")
