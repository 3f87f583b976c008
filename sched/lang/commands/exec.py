"""`exec`: run local programs synchronously and return what they print, never through a shell.

    exec ?-ignorestderr? ?-keepnewline? ?--? arg ?arg ...?

The words are a pipeline of programs separated by `|` (or `|&`, which also sends the
stderr of the program before it down the pipe), with Tcl's redirections, read here and
applied with subprocess.Popen and OS pipes:

    < file      the first program reads the file        << text   ...reads the text
    <@stdin     ...reads the shell's own stdin
    > file      the last program's stdout goes to the file (truncated)   >> file  (appended)
    2> file     every program's stderr goes to the file               2>> file  (appended)
    >& file     both stdout and stderr go to the file                 >>& file  (appended)
    2>@1        stderr goes where stdout goes (into the result, unless redirected)
    2>@stderr   stderr goes to the shell's own stderr; >@stdout likewise for stdout

A redirection may be one word (`>out.txt`) or two (`> out.txt`). Without `<`, a program reads
nothing (its stdin is /dev/null; Tcl would share the shell's stdin, which would eat a script
piped into `sched`). Without `>`, its stdout is the result, with one trailing newline removed
unless `-keepnewline`.

Failures are ScriptErrors, as Tcl's: `couldn't execute "foo": no such file or directory`; a
pipeline that fails gives what it printed, then `child killed: segmentation violation` for
each program a signal killed, then what it wrote on stderr, or else `child process exited
abnormally`; the errorcode is `CHILDSTATUS pid status` or `CHILDKILLED pid SIGNAL message`
(so `lindex $::errorCode 2` is the exit status). Output on stderr with status 0 is an error
too, unless `-ignorestderr` (which sends the stderr not redirected to sched's own, as Tcl
does). One difference from Tcl: a program before a `|` that dies of
SIGPIPE (its reader finished first, as in `yes | head -1`) is not an error.
Background pipelines (`&`) are not supported.

A simulation (`sched --simulate`) hands in an ExecRunner under EXEC_RUNNER_KEY in
`interp.extensions`: then `exec` starts nothing and the runner gives the result (or raises
the error) instead.

Ctrl-C: the terminal sends SIGINT to the children itself; we also watch
`interp.interrupted` while waiting, and when it is set we stop the children (SIGTERM, then
SIGKILL after a grace period) and raise "interrupted".
"""

from __future__ import annotations

import os
import signal
from enum import Enum
from typing import IO, Any, Protocol

from ..errors import Interrupted, ScriptError
from ..registry import BUILTINS
from ..args import MAX_STRING
from ..channels import os_error
from ..record import Record
from ..scripttext import SCRIPT_ERRORS
from ..tcllist import join_list


__all__ = ["Pipeline", "Redirect", "parse_pipeline", "run_pipeline", "WAIT_SLICE", "KILL_GRACE"]

WAIT_SLICE = 0.1
"""Seconds between two looks at `interp.interrupted` while a child runs."""

KILL_GRACE = 2.0
"""Seconds an interrupted child has between SIGTERM and SIGKILL."""


class Target(Enum):
    """Where a stream of the pipeline goes (or, for stdin, comes from)."""

    CAPTURE = "capture"  # into the result of exec (stdout) or the error text (stderr)
    NULL = "null"  # /dev/null (stdin by default)
    INHERIT = "inherit"  # the shell's own stream (>@stdout, 2>@stderr, <@stdin)
    FILE = "file"  # a file, truncated or appended
    TEXT = "text"  # stdin only: a given text (<<)
    STDOUT = "stdout"  # stderr only: wherever stdout goes (2>@1)


class Redirect(Record):
    __slots__ = _fields = ("target", "path", "append")
    target: Target
    path: str  # FILE: the file; TEXT: the text
    append: bool

    def __init__(self, target: Target, path: str = "", append: bool = False) -> None:
        self.target = target
        self.path = path
        self.append = append


class Pipeline(Record):
    """A parsed exec command line."""

    __slots__ = _fields = ("stages", "stdin", "stdout", "stderr", "stderr_piped")
    stages: list[list[str]]
    stdin: Redirect
    stdout: Redirect
    stderr: Redirect
    stderr_piped: list[bool]  # stage k's stderr joins its stdout pipe (|&)

    def __init__(self, stages: list[list[str]], stdin: Redirect | None = None, stdout: Redirect | None = None,
                 stderr: Redirect | None = None, stderr_piped: list[bool] | None = None) -> None:
        self.stages = stages
        self.stdin = Redirect(Target.NULL) if stdin is None else stdin
        self.stdout = Redirect(Target.CAPTURE) if stdout is None else stdout
        self.stderr = Redirect(Target.CAPTURE) if stderr is None else stderr
        self.stderr_piped = [] if stderr_piped is None else stderr_piped


# Longest operators first, so that `2>>` is not read as `2>` then `>`.
_OPERATORS = ["2>@1", "2>@", ">>&", ">&", "2>>", "2>", ">>", ">@", ">", "<<", "<@", "<", "|&", "|"]


def _operator(word: str) -> tuple[str, str] | None:
    for op in _OPERATORS:
        if word.startswith(op):
            return op, word[len(op):]
    return None


def parse_pipeline(words: list[str]) -> Pipeline:
    """Split exec's words into programs and redirections (no shell, no globbing)."""
    pipe = Pipeline(stages=[[]])
    i = 0
    while i < len(words):
        word = words[i]
        found = _operator(word)
        if found is None:
            if word == "&" and i == len(words) - 1:
                raise ScriptError("exec: background pipelines (a last word \"&\") are not supported")
            pipe.stages[-1].append(word)
            i += 1
            continue
        op, rest = found
        i += 1
        if op in ("|", "|&"):
            if rest or not pipe.stages[-1]:
                raise ScriptError('illegal use of | or |& in command')
            pipe.stderr_piped.append(op == "|&")
            pipe.stages.append([])
            continue
        if op == "2>@1":
            if rest:
                raise ScriptError(f'exec: bad redirection "{word}"')
            pipe.stderr = Redirect(Target.STDOUT)
            continue
        if not rest:
            if i >= len(words):
                raise ScriptError(f'can\'t specify "{op}" as last word in command')
            rest = words[i]
            i += 1
        _apply(pipe, op, rest)
    if not pipe.stages[-1]:
        raise ScriptError('illegal use of | or |& in command' if len(pipe.stages) > 1 else "exec: no program to run")
    pipe.stderr_piped.append(False)
    return pipe


def _apply(pipe: Pipeline, op: str, arg: str) -> None:
    if op == "<":
        pipe.stdin = Redirect(Target.FILE, arg)
    elif op == "<<":
        pipe.stdin = Redirect(Target.TEXT, arg)
    elif op == "<@":
        if arg != "stdin":
            raise ScriptError(f'exec: can only read from channel "stdin", not "{arg}"')
        pipe.stdin = Redirect(Target.INHERIT)
    elif op in (">", ">>"):
        pipe.stdout = Redirect(Target.FILE, arg, op == ">>")
    elif op in ("2>", "2>>"):
        pipe.stderr = Redirect(Target.FILE, arg, op == "2>>")
    elif op in (">&", ">>&"):
        pipe.stdout = Redirect(Target.FILE, arg, op == ">>&")
        pipe.stderr = Redirect(Target.STDOUT)
    elif op == ">@":
        if arg not in ("stdout", "stderr"):
            raise ScriptError(f'exec: can only write to channels "stdout" or "stderr", not "{arg}"')
        pipe.stdout = Redirect(Target.INHERIT, arg)
    elif op == "2>@":
        if arg not in ("stdout", "stderr"):
            raise ScriptError(f'exec: can only write to channels "stdout" or "stderr", not "{arg}"')
        pipe.stderr = Redirect(Target.INHERIT, arg)


# --- running ------------------------------------------------------------------------------------


class _Files:
    """The files and pipe ends a run opens, closed together whatever happens."""

    def __init__(self) -> None:
        self.opened: list[IO[bytes]] = []
        self.fds: list[int] = []

    def open(self, path: str, mode: str, verb: str) -> IO[bytes]:
        try:
            handle = open(path, mode)
        except OSError as err:
            raise os_error(f'couldn\'t {verb} file "{path}"', err) from None
        self.opened.append(handle)
        return handle

    def temp(self) -> IO[bytes]:
        import tempfile  # here, not at the top: a run that never calls exec does not load it (start-up)

        try:
            handle = tempfile.TemporaryFile()
        except OSError as err:
            raise os_error("exec: couldn't create a temporary file", err) from None
        self.opened.append(handle)
        return handle

    def close_fd(self, fd: int) -> None:
        if fd in self.fds:
            self.fds.remove(fd)
            os.close(fd)

    def close(self) -> None:
        for handle in self.opened:
            handle.close()
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def _stdin_source(pipe: Pipeline, files: _Files) -> Any:
    import subprocess  # (see _Files.temp)

    spec = pipe.stdin
    if spec.target is Target.FILE:
        return files.open(spec.path, "rb", "read")
    if spec.target is Target.TEXT:
        handle = files.temp()
        handle.write(spec.path.encode("utf-8", "surrogateescape"))
        handle.seek(0)
        return handle
    if spec.target is Target.INHERIT:
        return None
    return subprocess.DEVNULL


def _output(spec: Redirect, files: _Files, captured: IO[bytes] | None) -> Any:
    if spec.target is Target.FILE:
        return files.open(spec.path, "ab" if spec.append else "wb", "write")
    if spec.target is Target.INHERIT:
        return 1 if spec.path == "stdout" else 2
    return captured


def run_pipeline(interp: Any, pipe: Pipeline, *, ignore_stderr: bool = False, keep_newline: bool = False) -> str:
    """Run the pipeline to the end and return its captured stdout, or raise ScriptError."""
    files = _Files()
    procs: list[subprocess.Popen] = []
    try:
        out_file = files.temp() if pipe.stdout.target is Target.CAPTURE else None
        stdout = _output(pipe.stdout, files, out_file)
        # -ignorestderr: stderr not redirected goes to sched's own, as Tcl's does (not dropped)
        err_spec = Redirect(Target.INHERIT, "stderr") if ignore_stderr and pipe.stderr.target is Target.CAPTURE \
            else pipe.stderr
        err_file = files.temp() if err_spec.target is Target.CAPTURE else None
        stderr = stdout if err_spec.target is Target.STDOUT else _output(err_spec, files, err_file)
        source = _stdin_source(pipe, files)
        for k, argv in enumerate(pipe.stages):
            last = k == len(pipe.stages) - 1
            if last:
                out = stdout
            else:
                read_end, write_end = os.pipe()
                files.fds += [read_end, write_end]
                out = write_end
            err = out if pipe.stderr_piped[k] else stderr
            if pipe.stderr.target is Target.STDOUT:
                err = out if last else stderr
            procs.append(_spawn(argv, source, out, err))
            if type(source) is int:
                files.close_fd(source)
            if not last:
                files.close_fd(write_end)
                source = read_end
        _wait_all(interp, procs)
        stdout_text = _read(out_file)
        stderr_text = _read(err_file)
    except BaseException:
        _stop(procs)
        raise
    finally:
        files.close()
    _check_status(procs, stdout_text, stderr_text, ignore_stderr, keep_newline)
    if not keep_newline and stdout_text.endswith("\n"):
        stdout_text = stdout_text[:-1]
    return stdout_text


def _spawn(argv: list[str], stdin: Any, stdout: Any, stderr: Any) -> subprocess.Popen:
    import subprocess  # (see _Files.temp)

    try:
        return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, close_fds=True)
    except OSError as err:
        raise os_error(f'couldn\'t execute "{argv[0]}"', err) from None
    except ValueError as err:
        raise ScriptError(f'couldn\'t execute "{argv[0]}": {err}') from None


def _wait_all(interp: Any, procs: list[subprocess.Popen]) -> None:
    import subprocess  # (see _Files.temp)

    for proc in procs:
        while True:
            try:
                proc.wait(timeout=WAIT_SLICE)
                break
            except subprocess.TimeoutExpired:
                if interp.interrupted:
                    interp.interrupted = False
                    _stop(procs)
                    raise Interrupted("interrupted") from None


def _stop(procs: list[subprocess.Popen]) -> None:
    """End children still running: SIGTERM, then SIGKILL after KILL_GRACE seconds."""
    import subprocess  # (see _Files.temp)

    running = [p for p in procs if p.poll() is None]
    for proc in running:
        _signal(proc, signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            proc.wait()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except OSError:  # it ended meanwhile
        pass


def _read(handle: IO[bytes] | None) -> str:
    if handle is None:
        return ""
    size = os.fstat(handle.fileno()).st_size
    if size > MAX_STRING:
        raise ScriptError(f"exec: output of {size} bytes is more than the {MAX_STRING} a string may hold; redirect it to a file")
    handle.seek(0)
    return handle.read().decode("utf-8", SCRIPT_ERRORS)  # (invalid UTF-8 bytes as Tcl's exec reads them)


_SIGNAL_MESSAGES = {
    "SIGHUP": "hangup", "SIGINT": "interrupt", "SIGQUIT": "quit signal", "SIGILL": "illegal instruction",
    "SIGTRAP": "trace trap", "SIGABRT": "SIGABRT", "SIGBUS": "bus error", "SIGFPE": "floating-point exception",
    "SIGKILL": "kill signal", "SIGUSR1": "user-defined signal 1", "SIGSEGV": "segmentation violation",
    "SIGUSR2": "user-defined signal 2", "SIGPIPE": "write on pipe with no readers", "SIGALRM": "alarm clock",
    "SIGTERM": "software termination signal", "SIGXCPU": "exceeded CPU time limit",
    "SIGXFSZ": "exceeded file size limit", "SIGVTALRM": "virtual time alarm", "SIGPROF": "profiling alarm",
    "SIGSYS": "bad argument to system call",
}
"""Tcl's words for the signals (Tcl_SignalMsg), which its exec reports."""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _check_status(procs: list[subprocess.Popen], stdout_text: str, stderr_text: str, ignore_stderr: bool,
                  keep_newline: bool) -> None:
    """Raise Tcl's error for a pipeline that failed: its text is what the pipeline printed,
    a line for each program killed by a signal, what it wrote on stderr, or else "child
    process exited abnormally"; its errorcode is CHILDSTATUS pid status or CHILDKILLED pid
    signal message, as Tcl's (`lindex $::errorCode 2` is the exit status)."""
    killed: list[str] = []
    abnormal = False
    errorcode = "NONE"
    for k, proc in enumerate(procs):
        code = proc.returncode
        last = k == len(procs) - 1
        if code < 0 and not (not last and -code == signal.SIGPIPE):
            name = _signal_name(-code)
            message = _SIGNAL_MESSAGES.get(name) or (signal.strsignal(-code) or "unknown signal").lower()
            killed.append(f"child killed: {message}\n")
            errorcode = join_list(["CHILDKILLED", str(proc.pid), name, message])
        elif code > 0:
            abnormal = True
            errorcode = join_list(["CHILDSTATUS", str(proc.pid), str(code)])
    complaint = stderr_text if not ignore_stderr else ""
    if not (killed or abnormal or complaint):
        return
    text = stdout_text + "".join(killed) + complaint
    if abnormal and not complaint:
        text += "child process exited abnormally"
    if not keep_newline and text.endswith("\n"):
        text = text[:-1]
    err = ScriptError(text)
    err.errorcode = errorcode
    raise err


EXEC_RUNNER_KEY = "exec.runner"
"""Key in `interp.extensions` of the ExecRunner that stands in for running programs."""


class ExecRunner(Protocol):
    """What runs `exec`'s words instead of starting programs (sched --simulate records them)."""

    def run(self, words: list[str]) -> str:
        """The result of `exec WORDS` (the words after the options); ScriptError for a failure."""


@BUILTINS.command("pid", "the process id of this sched (Tcl's pid without a channel)")
def cmd_pid(interp: Any, argv: list[str]) -> str:
    return str(os.getpid())


@BUILTINS.command("exec ?-ignorestderr? ?-keepnewline? ?--? arg ?arg ...?",
                  "run programs (| pipelines, < > >> 2> 2>@1 << redirections) and return their output")
def cmd_exec(interp: Any, argv: list[str]) -> str:
    i = 1
    ignore_stderr = keep_newline = False
    while i < len(argv) and argv[i].startswith("-"):
        word = argv[i]
        i += 1
        if word == "--":
            break
        if word == "-ignorestderr":
            ignore_stderr = True
        elif word == "-keepnewline":
            keep_newline = True
        else:
            raise ScriptError(f'exec: bad option "{word}": must be -ignorestderr, -keepnewline, or --')
    if i >= len(argv):
        raise ScriptError('wrong # args: should be "exec ?-option ...? arg ?arg ...?"')
    runner: ExecRunner | None = interp.extensions.get(EXEC_RUNNER_KEY)
    if runner is not None:
        return runner.run(argv[i:])
    pipe = parse_pipeline(argv[i:])
    return run_pipeline(interp, pipe, ignore_stderr=ignore_stderr, keep_newline=keep_newline)
