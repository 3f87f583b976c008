"""Task definitions: the `task NAME ... end` block, its directives, and their read-time checks.

    task NAME            defines a task, or modifies it if it exists
      command WORD...    host LOCAL|NONE|HOSTNAME ?-required?    periods ?-poll S? ...
      nmax N   npending N   trange ...   active on|off   priority N   stdout ...   stderr ...
      task.exec ... end            task.exit SELECTOR ... end
    end

A task block runs its directives against a copy of the task's definition (a TaskSpec) and
hands the result to the scheduler only when the whole block succeeded, so a bad directive
never leaves a task half changed. `check_script` runs when a script is read, before any of it
runs: a directive outside a task, an unknown directive, a malformed constant argument or an
unknown selector is refused with its file, line and column.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import Pos, SchedError, TaskError
from .interp import READ_CHECKS
from .nodes import Block, Command, Script
from .registry import BUILTINS
from .timing import Limits, Periods, TimeRange, TimingError, parse_periods, parse_trange

__all__ = ["TaskSpec", "OutputDest", "JobDraft", "DIRECTIVES", "SELECTORS", "check_script", "parse_selector"]

SELECTORS = ("timeout", "crash", "down", "pending", "killed", "default")
"""task.exit selectors besides exit statuses (0..255)."""


@dataclass(frozen=True)
class OutputDest:
    """Where a job's stdout or stderr goes when it ends: a file (maybe appended) or a variable."""

    path: str | None = None
    var: str | None = None
    append: bool = False

    def __str__(self) -> str:
        if self.var is not None:
            return f"-var {self.var}"
        return ("-append " if self.append else "") + (self.path or "")


@dataclass
class TaskSpec:
    """What a task is: everything its directives say."""

    name: str
    argv: list[str] = field(default_factory=list)
    host: str = "NONE"
    host_required: bool = False
    periods: Periods = field(default_factory=Periods)
    nmax: int | None = None
    npending: int = 1
    ranges: list[TimeRange] = field(default_factory=list)
    active: bool = True
    priority: int = 0
    retry: int = 0
    stdout: OutputDest | None = None
    stderr: OutputDest | None = None
    exec_macro: Script | None = None
    exit_macros: dict[str, Script] = field(default_factory=dict)
    defined_at: Pos | None = None

    @property
    def limits(self) -> Limits:
        return Limits(self.nmax, self.npending)

    def copy(self) -> "TaskSpec":
        return dataclasses.replace(self, argv=list(self.argv), ranges=list(self.ranges), exit_macros=dict(self.exit_macros))

    def exit_macro_for(self, selector: str) -> tuple[str, Script | None]:
        """The macro for an outcome's selector, falling back to `default`."""
        if selector in self.exit_macros:
            return selector, self.exit_macros[selector]
        if "default" in self.exit_macros:
            return "default", self.exit_macros["default"]
        return "", None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "command": list(self.argv), "host": self.host, "host_required": self.host_required,
            "periods": {"poll": self.periods.poll, "exec": self.periods.exec, "timeout": self.periods.timeout,
                        "pending": self.periods.pending},
            "nmax": self.nmax, "npending": self.npending, "trange": [str(r) for r in self.ranges],
            "active": self.active, "priority": self.priority, "retry": self.retry,
            "stdout": str(self.stdout) if self.stdout else None, "stderr": str(self.stderr) if self.stderr else None,
            "task.exec": self.exec_macro is not None, "task.exit": sorted(self.exit_macros),
            "defined_at": str(self.defined_at) if self.defined_at else None,
        }


@dataclass
class JobDraft:
    """The job a task.exec macro is about to make: it may change the command and host."""

    argv: list[str]
    host: str
    host_required: bool


@dataclass
class _Defining:
    """The task block being run: the spec its directives change."""

    spec: TaskSpec
    ranges_cleared: bool = False


# --- directive argument parsing (shared by the commands and the read-time check) ---------------


class _ArgError(Exception):
    """A directive's argument is wrong; `index` is the word (1 = first argument)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.message = message
        self.index = index


def _parse_int(text: str, what: str, index: int, least: int = 0) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise _ArgError(f"{what} must be a whole number, got '{text}'", index) from None
    if value < least:
        raise _ArgError(f"{what} must be at least {least}, got {value}", index)
    return value


def _host_rule(args: list[str]) -> tuple[str, bool]:
    words = [a for a in args if a != "-required"]
    if len(words) != 1 or (len(args) - len(words)) > 1:
        raise _ArgError("expected: host LOCAL | NONE | HOSTNAME ?-required?", 1)
    name = words[0]
    required = "-required" in args
    if name.startswith("-"):
        raise _ArgError(f"unknown option '{name}': expected host LOCAL | NONE | HOSTNAME ?-required?", args.index(name) + 1)
    if name.upper() in ("LOCAL", "NONE"):
        name = name.upper()
        if required:
            raise _ArgError(f"-required needs a host name, not {name}", args.index("-required") + 1)
    return name, required


def _output_dest(args: list[str]) -> OutputDest:
    if len(args) == 2 and args[0] == "-var":
        if not args[1]:
            raise _ArgError("-var needs a variable name", 2)
        return OutputDest(var=args[1])
    if len(args) == 2 and args[0] == "-append":
        return OutputDest(path=args[1], append=True)
    if len(args) == 1 and not args[0].startswith("-"):
        return OutputDest(path=args[0])
    raise _ArgError("expected ?-append? PATH, or -var NAME", 1)


def _timing(fn: Callable[[list[str]], Any], args: list[str]) -> Any:
    try:
        return fn(args)
    except TimingError as err:
        raise _ArgError(err.message, None if err.word_index is None else err.word_index + 1) from None


def _active(args: list[str]) -> bool:
    word = args[0].lower()
    if word in ("on", "1", "yes", "true"):
        return True
    if word in ("off", "0", "no", "false"):
        return False
    raise _ArgError(f"expected on or off, got '{args[0]}'", 1)


def parse_selector(word: str) -> str:
    """A task.exit selector: an exit status 0..255 or one of SELECTORS."""
    lowered = word.lower()
    if lowered in SELECTORS:
        return lowered
    if word.isdigit() and 0 <= int(word) <= 255:
        return str(int(word))
    raise _ArgError(f"unknown selector '{word}': expected an exit status (0-255), " + ", ".join(SELECTORS), 1)


# Each directive: usage, help, and how it changes a spec (apply(spec, args, defining)).


def _apply_command(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.argv = list(args)


def _apply_host(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.host, spec.host_required = _host_rule(args)


def _apply_periods(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.periods = _timing(lambda a: parse_periods(a, spec.periods), args)


def _apply_nmax(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.nmax = None if args[0].lower() in ("none", "unlimited") else _parse_int(args[0], "nmax", 1)


def _apply_npending(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.npending = _parse_int(args[0], "npending", 1, least=1)


def _apply_trange(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    if args == ["none"]:
        spec.ranges = []
        d.ranges_cleared = True
        return
    rng = _timing(parse_trange, args)
    if not d.ranges_cleared:  # the first trange of a block replaces the ranges it had
        spec.ranges = []
        d.ranges_cleared = True
    spec.ranges.append(rng)


def _apply_active(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.active = _active(args)


def _apply_priority(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    try:
        spec.priority = int(args[0])
    except ValueError:
        raise _ArgError(f"priority must be a whole number, got '{args[0]}'", 1) from None


def _apply_retry(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.retry = _parse_int(args[0], "retry", 1)


def _apply_stdout(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.stdout = _output_dest(args)


def _apply_stderr(spec: TaskSpec, args: list[str], d: _Defining) -> None:
    spec.stderr = _output_dest(args)


@dataclass(frozen=True)
class Directive:
    usage: str
    help: str
    apply: Callable[[TaskSpec, list[str], _Defining], None]
    in_exec: bool = False  # may also be used in task.exec, for the job being made


DIRECTIVES: dict[str, Directive] = {
    "command": Directive("command word ?word ...?", "the program and its arguments (no shell unless you write sh -c)", _apply_command, True),
    "host": Directive("host LOCAL|NONE|HOSTNAME ?-required?", "where the jobs run: LOCAL here, NONE any controller host, or a preferred (-required: only that) host", _apply_host, True),
    "periods": Directive("periods ?-poll S? ?-exec S? ?-timeout S? ?-pending S?", "how often to look, the least time between launches, the job timeout, the pending timeout", _apply_periods),
    "nmax": Directive("nmax N", "the most jobs this task may ever make (none: no limit)", _apply_nmax),
    "npending": Directive("npending N", "the most jobs of this task outstanding at once (default 1)", _apply_npending),
    "trange": Directive("trange ?-exclude? HH:MM HH:MM ?-days DAYS?", "allow (or -exclude) a window of time of day, on some days (Mon-Fri, Sat,Sun); repeatable; `trange none` clears", _apply_trange),
    "active": Directive("active on|off", "a paused task makes no jobs; running ones carry on", _apply_active),
    "priority": Directive("priority N", "higher first when several tasks are due at once", _apply_priority),
    "retry": Directive("retry N", "a controller job that ends DOWN is run again, up to N times", _apply_retry),
    "stdout": Directive("stdout ?-append? PATH | -var NAME", "where the job's stdout goes when it ends (also in $stdout)", _apply_stdout),
    "stderr": Directive("stderr ?-append? PATH | -var NAME", "where the job's stderr goes when it ends (also in $stderr)", _apply_stderr),
}

_ARITY = {"command": (1, None), "host": (1, 2), "periods": (0, 8), "nmax": (1, 1), "npending": (1, 1),
          "trange": (1, 5), "active": (1, 1), "priority": (1, 1), "retry": (1, 1), "stdout": (1, 2), "stderr": (1, 2)}

_TASK_BLOCKS = ("task.exec", "task.exit")


def _check_arity(name: str, args: list[str]) -> None:
    lo, hi = _ARITY[name]
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise _ArgError(f'wrong # args: should be "{DIRECTIVES[name].usage}"', None)


# --- the commands ------------------------------------------------------------------------------


def _where_from(interp: Any, err: _ArgError) -> TaskError:
    words = interp.cmd_words
    pos = words[err.index].pos if err.index is not None and err.index < len(words) else None
    return TaskError(err.message, pos=pos)


def _directive_command(name: str, directive: Directive) -> Callable:
    def run(interp: Any, argv: list[str]) -> str:
        args = argv[1:]
        try:
            _check_arity(name, args)
            defining = interp.extensions.get("task.defining")
            if defining is not None:
                directive.apply(defining.spec, args, defining)
                return ""
            draft = interp.extensions.get("task.draft")
            if draft is not None and directive.in_exec:
                if name == "command":
                    draft.argv = list(args)
                else:
                    draft.host, draft.host_required = _host_rule(args)
                return ""
        except _ArgError as err:
            raise _where_from(interp, err) from None
        raise TaskError(_misplaced(name, draft is not None))

    return run


def _misplaced(name: str, in_exec: bool) -> str:
    if in_exec:
        return f"`{name}` cannot change a job in task.exec: only command and host can"
    return f"`{name}` is a task directive: it belongs inside a `task NAME` ... `end` block"


for _name, _directive in DIRECTIVES.items():
    BUILTINS.command(_directive.usage, _directive.help)(_directive_command(_name, _directive))
    # the usage lines hold alternatives (`PATH | -var NAME`): the arity comes from _ARITY
    _cdef = BUILTINS.commands[_name]
    _cdef.min_args, _cdef.max_args = _ARITY[_name][0], _ARITY[_name][1] or (1 << 30)


def _task_name(name: str) -> str:
    if not name or name.isdigit() or any(c.isspace() for c in name):
        raise TaskError(f"bad task name '{name}': a task name is one word and not a number (numbers are job ids)")
    return name


@BUILTINS.block("task name", "define a task (or change one): directives, task.exec and task.exit macros, then `end`")
def block_task(interp: Any, node: Block) -> str:
    from .scheduler import scheduler_of

    name = _task_name(interp.subst_word(node.header.words[1]))
    sched = scheduler_of(interp)
    existing = sched.tasks.get(name)
    spec = existing.spec.copy() if existing is not None else TaskSpec(name, defined_at=node.pos)
    if existing is not None and existing.deleting:
        raise TaskError(f"task {name} is being deleted (its last jobs are still out); wait for them, then define it again")
    saved = interp.extensions.get("task.defining")
    interp.extensions["task.defining"] = _Defining(spec)
    try:
        interp.run_script(node.body)
    finally:
        interp.extensions["task.defining"] = saved
    sched.define(spec)
    return ""


@BUILTINS.block("task.exec", "inside a task: a macro run before each job is made ($task, $job_count); `skip` makes no job")
def block_task_exec(interp: Any, node: Block) -> str:
    defining = interp.extensions.get("task.defining")
    if defining is None:
        raise TaskError("task.exec belongs inside a `task NAME` block")
    defining.spec.exec_macro = node.body
    return ""


@BUILTINS.block("task.exit selector", "inside a task: a macro run when a job ends this way (exit status N, timeout, crash, down, pending, killed, default)")
def block_task_exit(interp: Any, node: Block) -> str:
    defining = interp.extensions.get("task.defining")
    if defining is None:
        raise TaskError("task.exit belongs inside a `task NAME` block")
    try:
        selector = parse_selector(interp.subst_word(node.header.words[1]))
    except _ArgError as err:
        raise TaskError(err.message, pos=node.header.words[1].pos) from None
    defining.spec.exit_macros[selector] = node.body
    return ""


# --- the read-time check -----------------------------------------------------------------------


def check_script(script: Script) -> None:
    """Refuse misplaced and malformed directives before anything runs.

    Arguments that need substitution are checked when they run instead.
    """
    _check_commands(script.commands, context="top")


def _check_commands(commands: list, context: str, task: str = "") -> None:
    for node in commands:
        if isinstance(node, Block):
            _check_block(node, context, task)
        else:
            _check_command(node, context, task)


def _check_block(node: Block, context: str, task: str) -> None:
    name = node.name
    header = node.header
    if name == "task":
        if context != "top" and context != "body":
            pass  # a task defined inside a macro or loop is fine
        if context == "task":
            raise _located(f"a task block cannot be inside task `{task}`: close it with `end` first", header.pos, header)
        word = header.words[1]
        _check_commands(node.body.commands, "task", word.const or "?")
        return
    if name in _TASK_BLOCKS:
        if context != "task":
            raise _located(f"{name} belongs inside a `task NAME` block", header.pos, header)
        if name == "task.exit":
            word = header.words[1]
            if word.const is not None:
                try:
                    parse_selector(word.const)
                except _ArgError as err:
                    raise _located(err.message, word.pos, header) from None
        _check_commands(node.body.commands, "exec" if name == "task.exec" else "exit", task)
        return
    if context == "task":
        raise _located(_unknown_directive(name, task), header.pos, header)
    _check_commands(node.body.commands, context if context in ("exec", "exit") else "body", task)
    for clause in node.clauses:
        _check_commands(clause.body.commands, context if context in ("exec", "exit") else "body", task)


def _unknown_directive(name: str, task: str) -> str:
    valid = ", ".join(list(DIRECTIVES) + list(_TASK_BLOCKS))
    return f"unknown directive `{name}` in task `{task}`; valid here: {valid}"


def _check_command(cmd: Command, context: str, task: str) -> None:
    name = cmd.words[0].const
    if context == "task":
        if name not in DIRECTIVES:
            raise _located(_unknown_directive(name or "?", task), cmd.pos, cmd)
        args = [w.const for w in cmd.words[1:]]
        try:
            _check_arity(name, [a or "" for a in args])
            if all(a is not None for a in args):
                DIRECTIVES[name].apply(TaskSpec(task), args, _Defining(TaskSpec(task)))  # type: ignore[arg-type]
        except _ArgError as err:
            pos = cmd.words[err.index].pos if err.index is not None and err.index < len(cmd.words) else cmd.pos
            raise _located(err.message, pos, cmd) from None
        return
    if name in DIRECTIVES:
        if context == "exec" and DIRECTIVES[name].in_exec:
            return
        if context in ("top", "body"):
            raise _located(_misplaced(name, False), cmd.pos, cmd)
        if context == "exit":
            what = "use it in task.exec" if DIRECTIVES[name].in_exec else "it belongs in the task block itself"
            raise _located(f"`{name}` in task.exit has no job to change (it has ended); {what}", cmd.pos, cmd)
        raise _located(_misplaced(name, True), cmd.pos, cmd)


def _located(message: str, pos: Pos, cmd: Command) -> SchedError:
    err = TaskError(message, pos=pos)
    err.source_line = cmd.source.line(pos.line)
    return err


READ_CHECKS.append(check_script)
