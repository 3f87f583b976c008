"""What a task is: the TaskSpec its directives build, the job draft task.exec changes, and the
directives' arguments, parsed the same for the commands and for the read-time check.

    spec = TaskSpec("name")
    DIRECTIVES["nmax"].apply(spec, ["5"], Defining(spec))     # what `nmax 5` does in a task block
    parse_selector("timeout")                                  # a task.exit selector

The scheduler (psched.scheduler.loop) keeps TaskSpecs; the `task` block and its directive commands
(psched.scheduler.commands.tasks) make them. A bad argument is an ArgError naming the word it is about.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from ..lang.errors import Pos
from ..lang.nodes import Script
from ..lang.tcllist import split_list
from .rounds import RoundsRule, parse_rounds
from .timing import Limits, Periods, TimeRange, TimingError, parse_periods, parse_trange

if TYPE_CHECKING:
    from pclient.output import OutputFile

__all__ = ["TaskSpec", "OutputDest", "JobDraft", "Defining", "Directive", "DIRECTIVES", "ARITY", "TASK_BLOCKS",
           "SELECTORS", "JobSource", "ArgError", "check_arity", "host_noskew", "host_rule", "parse_selector", "DRAFT_KEY", "DEFINING_KEY",
           "SITE_KEY"]

DRAFT_KEY = "task.draft"
"""Key in `interp.extensions` of the JobDraft a running task.exec macro may change."""

DEFINING_KEY = "task.defining"
"""Key in `interp.extensions` of the Defining of the task block being run."""

SITE_KEY = "task.site"
"""Key in `interp.extensions` of the prefix (`SITE.`) of the site file being read (sched --sites)."""

SELECTORS = ("timeout", "crash", "down", "pending", "killed", "default")
"""task.exit selectors besides exit statuses (0..255)."""


@dataclass(frozen=True)
class OutputDest:
    """Where a job's stdout or stderr goes when it ends: a file (maybe appended, maybe rotated by
    size with `keep` old files) or a variable."""

    path: str | None = None
    var: str | None = None
    append: bool = False
    rotate: int = 0
    keep: int = 0

    def __str__(self) -> str:
        if self.var is not None:
            return f"-var {self.var}"
        rotation = f" -rotate {self.rotate} -keep {self.keep}" if self.rotate else ""
        return ("-append " if self.append else "") + (self.path or "") + rotation


class JobSource(Protocol):
    """What gives a task's jobs their command, host and environment, job by job (a sequence:
    psched.scheduler.sequences), before its task.exec macro runs."""

    def fill(self, draft: JobDraft) -> bool:
        """Fill in the job to make; False: none now (no job is made this time)."""

    def made(self, job: Any) -> str | None:
        """The job drafted by the last `fill` is made; what names it among the source's jobs
        (kept in the run ledger so that a restarted sched does not make it again)."""

    def resume(self, made: list[str]) -> None:
        """An earlier sched on this home made these jobs (as `made` named them): not again."""

    def adopted(self, job: Any, env: dict[str, str]) -> None:
        """A job an earlier sched made (`env`: the environment it was submitted with) is back."""

    def ended(self, job: Any) -> None:
        """A job of the task has ended (before its exit macro runs)."""

    def describe(self) -> str:
        """One line for `tasks -json`."""


_NO_FILES: Mapping[str, OutputFile] = MappingProxyType({})


@functools.lru_cache(maxsize=256, typed=True)  # typed: nmax True is refused, not taken for 1
def _limits(nmax: int | None, npending: int) -> Limits:
    """TaskSpec.limits: one Limits (checked once) for each pair, not one at each look."""
    return Limits(nmax, npending)


@functools.lru_cache(maxsize=256)
def _output_files(stdout: OutputDest | None, stderr: OutputDest | None, home: str | None) -> Mapping[str, OutputFile]:
    """TaskSpec.output_files, by what it depends on (`home`: $HOME, for os.path.expanduser)."""
    # imported here: pclient's package loads its job runner, which `sched -c` never needs
    from pclient.output import OutputFile

    files = {}
    for stream, dest in (("stdout", stdout), ("stderr", stderr)):
        if dest is not None and dest.path is not None:
            files[stream] = OutputFile(os.path.expanduser(dest.path), append=dest.append, rotate=dest.rotate,
                                       keep=dest.keep)
    return MappingProxyType(files)


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
    sync: str | None = None  # `sync NAME`: each job is that synchronized run (psched.scheduler.syncjobs)
    joblog: str | None = None  # `joblog FILE`: a line per finished job (psched.scheduler.joblog)
    hosts: tuple[str, ...] = ()  # `host -each LIST`: each launch makes one job per host (required there)
    rounds: RoundsRule | None = None  # `rounds N -windows ...`: jobs at the planned moments (psched.scheduler.rounds)
    rounds_seed: int = 0  # the rule's -seed, or one derived from the task's name
    source: JobSource | None = None  # gives each job its command, host and env (a sequence)
    noskew: bool = False  # `host ... -noskew`: its jobs never go to a SKEWED host (pcontrol's skew.py)
    cwd: str | None = None  # `cwd DIR`: the directory its jobs run in (else sched's, or their agent's)

    def output_files(self) -> Mapping[str, OutputFile]:
        """The files the `stdout`/`stderr` directives name, by stream (`-var NAME` is not a file).
        Made once for all the jobs of a definition (while $HOME, which `~` names, stays the same),
        not once per job: the mapping is shared, and read-only."""
        if self.stdout is None and self.stderr is None:
            return _NO_FILES  # (without a look at $HOME, at each job of most tasks)
        return _output_files(self.stdout, self.stderr, os.environ.get("HOME"))

    @property
    def limits(self) -> Limits:
        return _limits(self.nmax, self.npending)

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
        return self._describe_base() | self._describe_rounds()

    def _describe_rounds(self) -> dict[str, Any]:
        """Only for a task that uses them, so other tasks read as before."""
        extra: dict[str, Any] = {}
        if self.hosts:
            extra["hosts"] = list(self.hosts)
        if self.noskew:
            extra["noskew"] = True
        if self.cwd is not None:
            extra["cwd"] = self.cwd
        if self.rounds is not None:
            extra["rounds"] = str(self.rounds)
            extra["rounds_seed"] = self.rounds_seed
        return extra

    def _describe_base(self) -> dict[str, Any]:
        return {
            "name": self.name, "command": list(self.argv), "host": self.host, "host_required": self.host_required,
            "periods": {"poll": self.periods.poll, "exec": self.periods.exec, "timeout": self.periods.timeout,
                        "pending": self.periods.pending},
            "nmax": self.nmax, "npending": self.npending, "trange": [str(r) for r in self.ranges],
            "active": self.active, "priority": self.priority, "retry": self.retry,
            "stdout": str(self.stdout) if self.stdout else None, "stderr": str(self.stderr) if self.stderr else None,
            "task.exec": self.exec_macro is not None, "task.exit": sorted(self.exit_macros),
            "defined_at": str(self.defined_at) if self.defined_at else None,
            "sync": self.sync, "joblog": self.joblog,
            "sequence": self.source.describe() if self.source is not None else None,
        }


@dataclass
class JobDraft:
    """The job a task.exec macro is about to make: it may change the command and host; `env`
    is added to the job's environment (a sequence's params: psched.scheduler.sequences)."""

    argv: list[str]
    host: str
    host_required: bool
    env: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)  # extra variables of its task.exit macro
    noskew: bool = False


@dataclass
class Defining:
    """The task block being run: the spec its directives change."""

    spec: TaskSpec
    ranges_cleared: bool = False


# --- directive argument parsing (shared by the commands and the read-time check) ---------------


class ArgError(Exception):
    """A directive's argument is wrong; `index` is the word (1 = first argument)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.message = message
        self.index = index


_INT_LIMIT = 2**63 - 1
"""The largest count a directive takes: what pcontrol (and its journal) takes for a job's
numbers, so that a task is refused when it is defined, not its jobs at the controller."""


def _parse_int(text: str, what: str, index: int, least: int = 0) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise ArgError(f"{what} must be a whole number, got '{text}'", index) from None
    if value < least:
        raise ArgError(f"{what} must be at least {least}, got {value}", index)
    if value > _INT_LIMIT:
        raise ArgError(f"{what} is out of range (at most {_INT_LIMIT}), got {value}", index)
    return value


def host_noskew(args: list[str]) -> tuple[list[str], bool]:
    """The `host` words without -noskew, and whether it was there."""
    words = [a for a in args if a != "-noskew"]
    return words, len(words) < len(args)


def host_rule(args: list[str]) -> tuple[str, bool]:
    words = [a for a in args if a != "-required"]
    if len(words) != 1 or (len(args) - len(words)) > 1:
        raise ArgError("expected: host LOCAL | NONE | HOSTNAME ?-required?", 1)
    name = words[0]
    required = "-required" in args
    if not name.strip() or any(c.isspace() for c in name):  # pcontrol's rule for a host name
        raise ArgError(f"a host name cannot be empty or hold blanks, got '{name}': expected host LOCAL | NONE | HOSTNAME ?-required?",
                       args.index(name) + 1)
    if name.startswith("-"):
        raise ArgError(f"unknown option '{name}': expected host LOCAL | NONE | HOSTNAME ?-required?", args.index(name) + 1)
    if name.upper() in ("LOCAL", "NONE"):
        name = name.upper()
        if required:
            raise ArgError(f"-required needs a host name, not {name}", args.index("-required") + 1)
    return name, required


_OUTPUT_FORMS = "expected PATH ?-append? ?-rotate SIZE? ?-keep N?, or -var NAME"


def _output_dest(args: list[str]) -> OutputDest:
    """`-var NAME`, or a PATH with `-append`, `-rotate SIZE`, `-keep N` before or after it."""
    if args and args[0] == "-var":
        if len(args) != 2 or not args[1]:
            raise ArgError("-var needs a variable name (and nothing else)", 2 if len(args) > 1 else 1)
        return OutputDest(var=args[1])
    path: str | None = None
    append = False
    rotate: int | None = None
    keep: int | None = None
    index = 0
    while index < len(args):
        word = args[index]
        if word == "-append":
            append = True
        elif word in ("-rotate", "-keep"):
            if index + 1 >= len(args):
                raise ArgError(f"{word} needs a value: {_OUTPUT_FORMS}", index + 1)
            value = args[index + 1]
            index += 1
            if word == "-rotate":
                rotate = _parse_size(value, index + 1)
            else:
                keep = _parse_int(value, "-keep", index + 1)
        elif word.startswith("-"):
            raise ArgError(f"unknown option '{word}': {_OUTPUT_FORMS}", index + 1)
        elif path is not None:
            raise ArgError(f"one file only, got '{path}' and '{word}': {_OUTPUT_FORMS}", index + 1)
        else:
            path = word
        index += 1
    if path is None:
        raise ArgError(_OUTPUT_FORMS, 1)
    if keep is not None and rotate is None:
        raise ArgError("-keep needs -rotate SIZE", args.index("-keep") + 1)
    if rotate is not None and not append:
        raise ArgError("-rotate needs -append (a rotated file is written as the job runs, after what it holds)",
                       args.index("-rotate") + 1)
    if rotate == 0:
        raise ArgError("-rotate needs a size above 0", args.index("-rotate") + 2)
    if rotate and keep is None:
        from pclient.logsizes import DEFAULT_KEEP  # as the daemons' logs (pclient: not loaded by `sched -c`)

        keep = DEFAULT_KEEP
    return OutputDest(path=path, append=append, rotate=rotate or 0, keep=keep if rotate else 0)


def _parse_size(text: str, index: int) -> int:
    from pclient.logsizes import parse_size  # one size syntax for every log (pclient: not loaded by `sched -c`)

    try:
        return parse_size(text)
    except ValueError as err:
        raise ArgError(f"-rotate: {err}", index) from None


def _timing(fn: Callable[[list[str]], Any], args: list[str]) -> Any:
    """fn(args), its TimingError (or RoundsError) as an ArgError naming the same word."""
    try:
        return fn(args)
    except TimingError as err:
        raise ArgError(err.message, None if err.word_index is None else err.word_index + 1) from None


def _active(args: list[str]) -> bool:
    word = args[0].lower()
    if word in ("on", "1", "yes", "true"):
        return True
    if word in ("off", "0", "no", "false"):
        return False
    raise ArgError(f"expected on or off, got '{args[0]}'", 1)


def parse_selector(word: str) -> str:
    """A task.exit selector: an exit status 0..255 or one of SELECTORS."""
    lowered = word.lower()
    if lowered in SELECTORS:
        return lowered
    if word.isdigit() and 0 <= int(word) <= 255:
        return str(int(word))
    raise ArgError(f"unknown selector '{word}': expected an exit status (0-255), " + ", ".join(SELECTORS), 1)


# Each directive: usage, help, and how it changes a spec (apply(spec, args, defining)).


def command_words(args: list[str]) -> list[str]:
    """A `command` directive's words (in a task or its task.exec), refused with a NUL byte: the
    same for a LOCAL and a controller job, where it is written (no program can receive one)."""
    for index, word in enumerate(args, 1):
        if "\0" in word:
            raise ArgError(f"command word {index} holds a NUL byte (at character {word.index(chr(0)) + 1}), "
                           "which no program can receive as an argument", index)
    return list(args)


def _apply_command(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.argv = command_words(args)


def _apply_host(spec: TaskSpec, args: list[str], d: Defining) -> None:
    args, spec.noskew = host_noskew(args)
    if spec.noskew and args and args[0].upper() == "LOCAL":
        raise ArgError("-noskew is for controller hosts: a LOCAL job runs here", 2)
    if args and args[0] == "-each":
        spec.hosts = _each_hosts(args)
        spec.host, spec.host_required = spec.hosts[0], True
        return
    spec.host, spec.host_required = host_rule(args)
    spec.hosts = ()


def _each_hosts(args: list[str]) -> tuple[str, ...]:
    if len(args) != 2:
        raise ArgError("expected: host -each {HOST ...}", 1)
    try:
        hosts = split_list(args[1])
    except Exception as err:  # the list code's message says what is wrong with the list
        raise ArgError(f"host -each needs a list of host names: {err}", 2) from None
    if not hosts:
        raise ArgError("host -each needs at least one host", 2)
    for name in hosts:
        if name.upper() in ("LOCAL", "NONE") or name.startswith("-") or any(c.isspace() for c in name) or not name:
            raise ArgError(f"host -each takes host names, got '{name}'", 2)
    if len(set(hosts)) != len(hosts):
        raise ArgError("host -each names a host twice", 2)
    return tuple(hosts)


def _apply_rounds(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.rounds = _timing(parse_rounds, args)
    # no -seed: one derived from the name, so that a restart or a reload of sched keeps today's plan
    spec.rounds_seed = spec.rounds.seed if spec.rounds.seed is not None else zlib.crc32(spec.name.encode())


def _apply_periods(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.periods = _timing(lambda a: parse_periods(a, spec.periods), args)


def _apply_nmax(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.nmax = None if args[0].lower() in ("none", "unlimited") else _parse_int(args[0], "nmax", 1)


def _apply_npending(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.npending = _parse_int(args[0], "npending", 1, least=1)


def _apply_trange(spec: TaskSpec, args: list[str], d: Defining) -> None:
    if args == ["none"]:
        spec.ranges = []
        d.ranges_cleared = True
        return
    rng = _timing(parse_trange, args)
    if not d.ranges_cleared:  # the first trange of a block replaces the ranges it had
        spec.ranges = []
        d.ranges_cleared = True
    spec.ranges.append(rng)


def _apply_active(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.active = _active(args)


def _apply_priority(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.priority = _parse_int(args[0], "priority", 1, least=-_INT_LIMIT)


def _apply_retry(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.retry = _parse_int(args[0], "retry", 1)


def _apply_stdout(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.stdout = _output_dest(args)


def _apply_stderr(spec: TaskSpec, args: list[str], d: Defining) -> None:
    spec.stderr = _output_dest(args)


def _apply_sync(spec: TaskSpec, args: list[str], d: Defining) -> None:
    if not args[0] or args[0].startswith("-"):
        raise ArgError(f"sync needs the name of a sync block, got '{args[0]}'", 1)
    spec.sync = args[0]


def _apply_joblog(spec: TaskSpec, args: list[str], d: Defining) -> None:
    if not args[0]:
        raise ArgError("joblog needs a file name", 1)
    spec.joblog = args[0]


def _apply_cwd(spec: TaskSpec, args: list[str], d: Defining) -> None:
    if not args[0]:
        raise ArgError("cwd needs a directory", 1)
    if "\0" in args[0]:
        raise ArgError("cwd holds a NUL byte, which no directory's name can", 1)
    spec.cwd = args[0]


@dataclass(frozen=True)
class Directive:
    usage: str
    help: str
    apply: Callable[[TaskSpec, list[str], Defining], None]
    in_exec: bool = False  # may also be used in task.exec, for the job being made


DIRECTIVES: dict[str, Directive] = {
    "command": Directive("command word ?word ...?", "the program and its arguments (no shell unless you write sh -c)", _apply_command, True),
    "host": Directive("host LOCAL|NONE|HOSTNAME ?-required? ?-noskew? | -each LIST ?-noskew?", "where the jobs run: LOCAL here, NONE any controller host, or a preferred (-required: only that) host; -each: one job per host of the list at each launch; -noskew: never on a SKEWED host (a job for one waits until its clock is back in line)", _apply_host, True),
    "periods": Directive("periods ?-poll S? ?-exec S? ?-timeout S? ?-pending S?", "how often to look, the least time between launches, the job timeout, the pending timeout (S: seconds or a duration: 90, 0.5, 5m, 1h30m)", _apply_periods),
    "nmax": Directive("nmax N", "the most jobs this task may ever make (none: no limit)", _apply_nmax),
    "npending": Directive("npending N", "the most jobs of this task outstanding at once (default 1)", _apply_npending),
    "trange": Directive("trange ?-exclude? HH:MM HH:MM ?-days DAYS?", "allow (or -exclude) a window of time of day, on some days (Mon-Fri, Sat,Sun); repeatable; `trange none` clears", _apply_trange),
    "active": Directive("active on|off", "a paused task makes no jobs; running ones carry on", _apply_active),
    "priority": Directive("priority N", "higher first when several tasks are due at once", _apply_priority),
    "retry": Directive("retry N", "a controller job that ends DOWN is run again, up to N times", _apply_retry),
    "stdout": Directive("stdout PATH ?-append? ?-rotate SIZE? ?-keep N? | -var NAME", "where the job's stdout goes when it ends (also in $stdout); -append -rotate 10M -keep 5: written as the job runs, rotated by size, N old files kept", _apply_stdout),
    "stderr": Directive("stderr PATH ?-append? ?-rotate SIZE? ?-keep N? | -var NAME", "where the job's stderr goes when it ends (also in $stderr); -rotate and -keep as for stdout", _apply_stderr),
    "sync": Directive("sync name", "instead of `command`: each job is the synchronized run of that `sync` block (exit 0 on success, 1 on failure; $sync_result in task.exit)", _apply_sync),
    "cwd": Directive("cwd DIR", "the directory its jobs run in, on their host (default: sched's for LOCAL jobs, the agent's for controller jobs); one missing there ends the job EXIT 127", _apply_cwd),
    "joblog": Directive("joblog file", "append a line per finished job to FILE, as GNU parallel's --joblog (seq, host, start, run time, exit value, signal, command)", _apply_joblog),
    "rounds": Directive("rounds n -windows BOUNDARIES -gap DURATION -runtime DURATION ?-seed N?", "N random rounds between each two times of day: every host of `host -each` once per round, shuffled, runtime+gap apart (psched.scheduler.rounds); `check TASK -plan` shows the plan", _apply_rounds),
}

ARITY = {"command": (1, None), "host": (1, 3), "periods": (0, 8), "nmax": (1, 1), "npending": (1, 1),
          "trange": (1, 5), "active": (1, 1), "priority": (1, 1), "retry": (1, 1), "stdout": (1, 6), "stderr": (1, 6), "sync": (1, 1), "cwd": (1, 1), "joblog": (1, 1), "rounds": (1, 9)}

TASK_BLOCKS = ("task.exec", "task.exit")


def check_arity(name: str, args: list[str]) -> None:
    lo, hi = ARITY[name]
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise ArgError(f'wrong # args: should be "{DIRECTIVES[name].usage}"', None)
