"""The one exception hierarchy of the sched language and shell.

Every error the interpreter can raise is a SchedError; nothing else escapes
`Interp.eval`. Errors are data: they carry the position (file, line, column),
the command and, inside macros, the chain of calls.

    Exception
     +-- SchedError                      .message, .pos, .trace
          +-- ParseError                 script text is malformed (.pos, .source_line)
          |    +-- IncompleteError       ...because it stops inside an open construct
          +-- ExprError                  `expr` syntax or evaluation (.offset in the expr text)
          +-- ListError                  malformed Tcl list (.offset)
          +-- ScriptError                a command failed at run time (.command)
          |    +-- ArityError            wrong # args (message is the usage line)
          |    +-- Interrupted           Ctrl-C stopped the script (`catch` lets it through)
          +-- TaskError                  a task definition is invalid

    ControlFlow (BaseException, never an error; caught by loops, macros, catch)
     +-- Break, Continue, Return(value), Skip        .command: the command that raised it
     +-- OtherCode(code, value)          a completion code of 5 or more (`return -code 7`)

    QuitRequest (BaseException)          `quit`/`exit`: leave sched (no `catch` stops it)

An error also carries Tcl's `errorcode` (a list: "NONE" unless `error`/`throw` gave one, or Tcl's
own for wrong # args, an unknown command or variable, a division by zero) and,
once set by `error MSG INFO`, its `errorinfo`; `catch`, `try` and `$errorInfo` report them.
`Return` carries `return -code/-level` and the other options of `return -options`.
"""

from __future__ import annotations

from .record import Frozen


class Pos(Frozen):
    """A place in a source text: 1-based line and column."""

    __slots__ = _fields = ("file", "line", "column")
    file: str
    line: int
    column: int

    def __init__(self, file: str, line: int, column: int) -> None:
        object.__setattr__(self, "file", file)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "column", column)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SchedError(Exception):
    """Base of every error the language raises."""

    def __init__(self, message: str, *, pos: Pos | None = None, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.offset = offset
        self.source_line: str | None = None
        # Calls the error travelled through, innermost first: (description, Pos | None).
        self.trace: list[tuple[str, Pos | None]] = []
        self.errorcode = "NONE"  # Tcl's -errorcode: a list
        self.errorinfo: str | None = None  # Tcl's -errorinfo when given (error MSG INFO)
        self.command_text: str | None = None  # the innermost command it came from, as written

    def with_pos(self, pos: Pos | None, source_line: str | None = None) -> "SchedError":
        """Attach a position if the error does not have one yet."""
        if self.pos is None and pos is not None:
            self.pos = pos
            if source_line is not None:
                self.source_line = source_line
        return self

    def __str__(self) -> str:
        return self.message

    def render(self) -> str:
        """The full report: position, message, the offending line with a caret, the call chain."""
        head = f"{self.pos}: {self.message}" if self.pos else self.message
        lines = [head]
        if self.source_line is not None and self.pos is not None:
            lines.append("    " + self.source_line.expandtabs(1))
            lines.append("    " + " " * (self.pos.column - 1) + "^")
        previous, repeats = None, 0
        for entry in [*self.trace, None]:  # runaway recursion: say how often a line repeats
            if entry is not None and entry == previous:
                repeats += 1
                continue
            if repeats:
                lines.append(f"    ... the line above {repeats} more time{'s' if repeats > 1 else ''}")
            if entry is not None:
                what, where = entry
                lines.append(f"    while executing {what}" + (f" at {where}" if where else ""))
            previous, repeats = entry, 0
        return "\n".join(lines)


def error_info(err: SchedError) -> str:
    """Tcl's errorInfo of an error: the message (or the info `error` was given), the command it
    came from and the calls it travelled through."""
    lines = [err.errorinfo if err.errorinfo is not None else err.message]
    if err.command_text is not None and err.errorinfo is None:  # `error MSG INFO`: INFO says it
        lines.append(f'    while executing\n"{_clip_info(err.command_text)}"')
    for k, (what, where) in enumerate(err.trace):
        if k == 0 and where is not None and where == err.pos and err.command_text is not None:
            continue  # raised by the call itself (`return -code error`): "while executing" said it
        lines.append(f"    invoked from within\n{what}")
    return "\n".join(lines)


def _clip_info(text: str) -> str:
    return text if len(text) <= 150 else text[:150] + "..."


class ParseError(SchedError):
    """The script text is malformed."""


class IncompleteError(ParseError):
    """The script ends inside an open construct (brace, quote, bracket, block).

    `.opener` says what is open (e.g. "{" or "task") and `.opened_at` where; the REPL uses
    this to continue reading lines and to show what is open in its continuation prompt.
    """

    def __init__(self, message: str, *, pos: Pos | None = None, opener: str = "", opened_at: Pos | None = None):
        super().__init__(message, pos=pos)
        self.opener = opener
        self.opened_at = opened_at


class ExprError(SchedError):
    """`expr` could not parse or evaluate its expression."""


class ListError(SchedError):
    """A string could not be read as a Tcl list (.offset: where; .element: where the element
    that could not be read starts, which `string is list -failindex` reports)."""

    def __init__(self, message: str, *, offset: int | None = None, element: int | None = None):
        super().__init__(message, offset=offset)
        self.element = element


class ScriptError(SchedError):
    """A command failed while running."""

    def __init__(self, message: str, *, pos: Pos | None = None, command: str | None = None, offset: int | None = None):
        super().__init__(message, pos=pos, offset=offset)
        self.command = command


class ArityError(ScriptError):
    """A command got the wrong number of arguments; the message quotes its usage line."""

    def __init__(self, message: str, *, pos: Pos | None = None, command: str | None = None, offset: int | None = None):
        super().__init__(message, pos=pos, command=command, offset=offset)
        self.errorcode = "TCL WRONGARGS"  # as Tcl's


class Interrupted(ScriptError):
    """Ctrl-C (Interp.interrupt) stopped the running script. `catch` does not catch it, so a
    loop around a `catch` still stops."""


class TaskError(SchedError):
    """A task definition or directive is invalid."""


# --- control flow: not errors -------------------------------------------------------------


class ControlFlow(BaseException):
    """Non-local control flow; BaseException so that `except Exception` never swallows it.

    `command` is the syntax node of the command that raised it (set by the interpreter), so
    that a `break` outside any loop is reported where it stands.
    """

    command = None
    value = ""  # the result it carries (`return -code break VALUE`)


class Break(ControlFlow):
    pass


class Continue(ControlFlow):
    pass


class Return(ControlFlow):
    """`return`: `code` is what the level it reaches completes with (0 ok, 1 error, 2 return,
    3 break, 4 continue, or any integer), `level` how many proc or macro levels it leaves,
    `options` the other -key value pairs (`-errorcode`, `-errorinfo`, user keys)."""

    def __init__(self, value: str = "", code: int = 0, level: int = 1, options: dict[str, str] | None = None):
        super().__init__(value)
        self.value = value
        self.code = code
        self.level = level
        self.options = options or {}


class Skip(ControlFlow):
    """`skip` inside task.exec: make no job this time."""


class OtherCode(ControlFlow):
    """A completion code other than ok, error, return, break and continue (`return -code 6`):
    only `catch` and `try` take it."""

    def __init__(self, code: int, value: str = ""):
        super().__init__(code, value)
        self.code = code
        self.value = value


class QuitRequest(BaseException):
    """`quit` / `exit` was called: leave with `status`. A BaseException so that no `catch` keeps it.

    Raised by the command (psched.shell.session); the CLI and the REPL turn it into the exit status. A
    macro that the scheduler runs inside the event loop cannot raise it through asyncio: the
    scheduler hands it to psched.scheduler.eventloop.leave_soon instead.
    """

    def __init__(self, status: int = 0, force: bool = False):
        super().__init__(status)
        self.status = status
        self.force = force


class FileFormatError(ValueError):
    """A malformed file of another format than the language's (a faults file, a NetJobs file):
    where (path, line, column), what was expected, and the line itself to show a caret under."""

    def __init__(self, path: str, line: int, column: int, message: str, text: str = ""):
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path, self.line, self.column, self.message, self.text = path, line, column, message, text

    def render(self) -> str:
        out = str(self)
        if self.text:
            out += "\n    " + self.text.expandtabs(1) + "\n    " + " " * (self.column - 1) + "^"
        return out
