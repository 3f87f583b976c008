"""The documentation stays true to the code.

- docs/commands.md is what scripts/gendocs makes from the registry (`--check`), so adding a
  command without regenerating fails here, and every command has help and a usage line that
  starts with its name.
- Every example session in docs/*.md (a ```sched block whose lines start with the prompt
  `sched> `) is replayed in a fresh interpreter, and what it prints must be what the page
  shows: results, `echo` output and rendered errors, exactly as the shell prints them.
  Continuation lines carry the shell's continuation prompt (`   {> `, ` task> `...), and the
  test checks that the prompt shown is the one the shell would show.
- Every other ```sched block is a script that must parse and pass the read-time checks
  (examples of bad input are written as ```text blocks instead).
"""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import io
import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import psched
from psched.scheduler.attach import SCHEDULER_KEY
from psched.lang.errors import SchedError

ROOT = Path(__file__).resolve().parent.parent
GENDOCS = ROOT / "scripts" / "gendocs"
DOCS = ROOT / "docs"
PROSE = ("language.md", "tasks.md")
PROMPT = "sched> "


def _load_gendocs():
    loader = importlib.machinery.SourceFileLoader("gendocs", str(GENDOCS))
    spec = importlib.util.spec_from_loader("gendocs", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


gendocs = _load_gendocs()


# --- commands.md -------------------------------------------------------------------------------


def test_commands_md_is_up_to_date():
    done = subprocess.run([sys.executable, str(GENDOCS), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"docs/commands.md is stale; run scripts/gendocs\n{done.stderr}"


def test_check_fails_with_a_diff_summary_when_the_file_is_stale(tmp_path, capsys):
    stale = tmp_path / "commands.md"
    stale.write_text("# Command reference\n\nnothing here\n")
    assert gendocs.main(["--check", "--output", str(stale)]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err and "line(s) to add" in err and "+### exit" in err
    assert gendocs.main(["--check", "--output", str(tmp_path / "missing.md")]) == 1
    assert gendocs.main(["--output", str(stale)]) == 0  # regenerating makes it pass
    assert gendocs.main(["--check", "--output", str(stale)]) == 0


def test_the_reference_picks_up_whatever_is_registered():
    from psched.lang.registry import CommandDef, parse_usage

    commands = gendocs.load_commands()
    fake = CommandDef("zzfrob", parse_usage("zzfrob thing ?-loud?"), "frobnicate a thing", fn=lambda i, a: "")
    text = gendocs.render(dict(commands, zzfrob=fake))
    assert "### zzfrob" in text and "`zzfrob thing ?-loud?`" in text and "frobnicate a thing" in text
    assert text == gendocs.render(dict(reversed(list(dict(commands, zzfrob=fake).items()))))  # order-free


def test_ensembles_aliases_and_block_forms_are_described():
    text = gendocs.render(gendocs.load_commands())
    assert "- `string length string`" in text  # each subcommand's usage line
    assert "Another name for [`source`]" in text  # input
    assert "Block form only: write `task name`" in text
    assert "Also a block form: a header line `if expr`" in text


def _all_commands():
    return sorted(gendocs.load_commands().items())


def test_every_command_has_help():
    missing = []
    for name, cdef in _all_commands():
        if not cdef.help.strip():
            missing.append(name)
        for sub_name, sub in sorted((cdef.subcommands or {}).items()):
            if not sub.help.strip():
                missing.append(f"{name} {sub_name}")
    assert not missing, f"commands without help text: {', '.join(missing)}"


def test_every_usage_line_starts_with_the_command_name():
    wrong = []
    for name, cdef in _all_commands():
        if cdef.name != name:  # an alias (`input` is `source`): the usage names the real command
            if gendocs.load_commands().get(cdef.name) is not cdef:
                wrong.append(f"{name}: alias of unknown {cdef.name}")
            continue
        if cdef.usage.text.split()[0] != name:
            wrong.append(f"{name}: {cdef.usage.text!r}")
        for sub_name, sub in sorted((cdef.subcommands or {}).items()):
            if sub.usage.text.split()[:2] != [name, sub_name]:
                wrong.append(f"{name} {sub_name}: {sub.usage.text!r}")
    assert not wrong, "usage lines that do not start with their command:\n" + "\n".join(wrong)


# --- the examples in the prose docs ------------------------------------------------------------


@dataclass
class Fence:
    file: str
    line: int  # of the first line inside the fence
    info: str
    lines: list[str]

    @property
    def is_session(self) -> bool:
        return any(line.startswith(PROMPT) for line in self.lines)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


_FENCE = re.compile(r"^```\s*([\w.-]*)\s*$")


def fences(name: str) -> list[Fence]:
    """The fenced code blocks of a markdown file."""
    found, current = [], None
    for number, line in enumerate((DOCS / name).read_text(encoding="utf-8").splitlines(), 1):
        m = _FENCE.match(line)
        if current is None:
            if m:
                current = Fence(name, number + 1, m.group(1), [])
        elif line.strip() == "```":
            found.append(current)
            current = None
        else:
            current.lines.append(line)
    assert current is None, f"{name}: a code fence opened at line {current.line - 1} is not closed"
    return found


def _sched_fences(session: bool) -> list[Fence]:
    return [f for name in PROSE if (DOCS / name).exists() for f in fences(name)
            if f.info == "sched" and f.is_session == session]


@dataclass
class Step:
    line: int
    text: str  # the input, continuation prompts removed
    expected: list[str]


def session_steps(fence: Fence) -> list[Step]:
    """Split a session into inputs (with their continuation lines) and the output shown after each."""
    from psched.shell.repl import continuation_label

    steps: list[Step] = []
    i, lines = 0, fence.lines
    assert lines and lines[0].startswith(PROMPT), f"{fence}: a session starts with the prompt"
    while i < len(lines):
        start = i
        typed = [lines[i][len(PROMPT):]]
        i += 1
        while _needs_more("\n".join(typed)):
            label = continuation_label("\n".join(typed))
            shown = f"{label}> ".rjust(len(PROMPT))
            assert i < len(lines), f"{fence.file}:{fence.line + start}: the input is not finished (open: {label})"
            assert lines[i].startswith(shown), (
                f"{fence.file}:{fence.line + i}: the shell would show the continuation prompt {shown!r} here")
            typed.append(lines[i][len(shown):])
            i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith(PROMPT):
            expected.append(lines[i])
            i += 1
        steps.append(Step(fence.line + start, "\n".join(typed), expected))
    return steps


def _needs_more(text: str) -> bool:
    from psched.shell.session import needs_more

    return needs_more(text) is not None


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; an expected line `...` stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and _matches(expected[1:], actual[1:])


def _finish_jobs(interp) -> list[str]:
    """Kill what a session left running (it should leave nothing) and say what it was."""
    from psched.scheduler.eventloop import get_loop, run_until

    sched = interp.extensions.get(SCHEDULER_KEY)
    if sched is None:
        return []
    sched.stop()
    left = sched.outstanding()
    if not left:
        return []
    for job in left:
        try:
            sched.kill(job.id)
        except SchedError:
            pass
    done = get_loop().create_future()

    def ended(job):
        if not sched.outstanding() and not done.done():
            done.set_result(None)

    sched.job_listeners.append(ended)
    try:
        run_until(asyncio.wait_for(done, 10), "cleanup", interruptible=False)
    except asyncio.TimeoutError:
        pass
    return [f"job {j.id} of task {j.task}" for j in left]


def _ids(fences_: list[Fence]) -> list[str]:
    return [str(f) for f in fences_]


SESSIONS = _sched_fences(session=True)
SCRIPTS = _sched_fences(session=False)


def test_the_docs_have_examples():
    assert len(SESSIONS) >= 10 and len(SCRIPTS) >= 3


class _ShellLog(logging.Handler):
    """What `sched` prints for the library's warnings (psched.shell.cli sets this format up)."""

    def __init__(self, out: io.StringIO):
        super().__init__(logging.WARNING)
        self.out = out
        self.setFormatter(logging.Formatter("sched: %(levelname)s: %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.out.write(self.format(record) + "\n")


def replay(fence: Fence) -> tuple[list[tuple[Step, list[str]]], list[str]]:
    """Run a session in a fresh interpreter: each step with what sched prints for it, and the
    jobs the session left running (killed here)."""
    out = io.StringIO()
    interp = psched.Interp(stdout=out)
    handler = _ShellLog(out)
    logger = logging.getLogger("psched")
    logger.addHandler(handler)
    shown_steps = []
    try:
        for step in session_steps(fence):
            try:
                result = interp.eval(step.text, "<input>")
                shown = out.getvalue() + (result + "\n" if result else "")
            except SchedError as err:
                shown = out.getvalue() + err.render() + "\n"
            out.seek(0)
            out.truncate()
            shown_steps.append((step, shown.splitlines()))
    finally:
        left = _finish_jobs(interp)
        logger.removeHandler(handler)
    return shown_steps, left


@pytest.mark.parametrize("fence", SESSIONS, ids=_ids(SESSIONS))
def test_example_session(fence, tmp_path, monkeypatch):
    monkeypatch.setenv("SCHED_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    steps, left = replay(fence)
    problems = [f"{fence.file}:{step.line}: {step.text!r}\n  the page shows:\n"
                + "\n".join(f"    {line}" for line in step.expected)
                + "\n  sched prints:\n" + "\n".join(f"    {line}" for line in actual)
                for step, actual in steps if not _matches(step.expected, actual)]
    assert not problems, "\n".join(problems)
    assert not left, f"{fence}: the session leaves jobs running: {', '.join(left)}"


@pytest.mark.parametrize("fence", SCRIPTS, ids=_ids(SCRIPTS))
def test_example_script_is_valid(fence):
    text = "\n".join(fence.lines) + "\n"
    try:
        psched.Interp().read(text, fence.file)
    except SchedError as err:
        raise AssertionError(f"{fence}: the example does not read:\n{err.render()}") from None


# --- terminal examples: `$ cat FILE` then `$ sched ...` and what it prints ----------------------


def _terminal_fences() -> list[Fence]:
    return [f for name in PROSE if (DOCS / name).exists() for f in fences(name)
            if f.info == "text" and f.lines and f.lines[0].startswith("$ ")
            and any("sched" in line for line in f.lines if line.startswith("$ "))]


TERMINALS = _terminal_fences()


@pytest.mark.parametrize("fence", TERMINALS, ids=_ids(TERMINALS))
def test_terminal_example_prints_what_the_page_shows(fence, tmp_path):
    """`$ cat NAME` shows a file (written here); any other `$ ...` runs in bash with the real
    `sched` first on PATH, and must print the lines below it."""
    steps: list[tuple[str, list[str]]] = []
    for line in fence.lines:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SCHED_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    for command, shown in steps:
        if command.startswith("cat ") and len(command.split()) == 2:
            (tmp_path / command.split()[1]).write_text("\n".join(shown) + "\n")
            continue
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
        printed = (done.stdout + done.stderr).splitlines()
        assert printed == shown, f"{fence}: `{command}`\n  the page shows:\n" + "\n".join(
            f"    {x}" for x in shown) + "\n  sched prints:\n" + "\n".join(f"    {x}" for x in printed)
