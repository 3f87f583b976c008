"""Loading the files of a long-running sched, and loading them again, without a burst of jobs.

    load_files(interp, files)   # a server's first load of its files, and every `reload`

One load goes in four steps, and the task table changes only in the last:

1. read: every file is parsed and checked (syntax, task directives) before any of it runs,
   in a thread, while the loop goes on making the jobs that are due;
2. stage: the files run with `Scheduler.staging` set: a `task` block builds its TaskSpec into
   the staging set, from scratch (not from the running task), and `run` is only recorded.
   Other commands (`proc`, `set`, `controller host add`, ...) act as they always do; $argv0,
   $argv and $argc are first set again to the values sched was started with
   (psched.lang.scriptargs);
3. check: every staged task is one the scheduler takes (it has something to run);
4. apply, in one step (the loop does not run meanwhile, so no job is made half-way):
   - a task new to the table is defined, its first look spread over its first period by an
     offset from its name (`first_offset`): a thousand tasks do not fire in the same second,
     at the first start as after a reload that adds them;
   - a task the files define as they did at the last load is left alone: its counters, jobs,
     schedule and what the prompt changed (`pause`) stay;
   - a task whose definition changed takes the new one and keeps its counters, its jobs, its
     last launch (so `-exec` spacing goes on) and its next look: exactly when its periods are
     the same, else the last look plus the new poll period;
   - a task of the last load that the files no longer define is deleted as `delete` does: no
     new jobs, its running jobs finish and are harvested (their exit macros run), then it goes.
     Tasks defined at the prompt, not by the files, are not the files' to remove;
   - `run` in the files starts the scheduler if it is not running.

An error in steps 1 to 3 is raised (a SchedError naming file:line:col) and the task table is as
it was. What the files did before the error outside the task table (a `proc`, a variable) stays
done: the interpreter has no undo.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..lang.errors import Pos, SchedError, TaskError
from ..lang.nodes import Block, Command, Script
from ..lang.scriptargs import reset_script_arguments
from ..lang.scripttext import read_script_file
from .attach import scheduler_of
from .eventloop import get_loop, run_until
from .loop import Scheduler, TaskEntry, check_definable
from .taskspec import TaskSpec
from .timing import Periods

__all__ = ["RELOAD_KEY", "NO_FILES", "reload_error", "TaskStaging", "Loaded", "ReloadResult", "load_files", "first_offset", "spec_shape"]

RELOAD_KEY = "reload.files"
"""Key in `interp.extensions` of the Loaded state: the files and what they defined last time."""

NO_FILES = "this sched has no files to read again (a server started with `sched --serve FILE...` has)"


@dataclass
class TaskStaging:
    """The tasks the files being loaded define, and whether they say `run`."""

    specs: dict[str, TaskSpec] = field(default_factory=dict)
    run: bool = False

    def spec_to_change(self, name: str, pos: Pos) -> TaskSpec:
        """What a `task NAME` block starts from: this load's own definition so far, else nothing."""
        staged = self.specs.get(name)
        return staged.copy() if staged is not None else TaskSpec(name, defined_at=pos)

    def stage(self, spec: TaskSpec) -> None:
        self.specs[spec.name] = spec


@dataclass
class Loaded:
    """The files a sched loads (`reload` reads them again) and the tasks they defined last time."""

    files: list[str]
    specs: dict[str, TaskSpec] = field(default_factory=dict)
    loads: int = 0


@dataclass
class ReloadResult:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    started: bool = False

    def summary(self) -> str:
        def names(items: list[str]) -> str:
            shown = ", ".join(items[:8]) + (", ..." if len(items) > 8 else "")
            return f" ({shown})" if items else ""
        return (f"{len(self.added)} task(s) added{names(self.added)}, {len(self.changed)} changed"
                f"{names(self.changed)}, {len(self.removed)} removed{names(self.removed)}, "
                f"{len(self.unchanged)} unchanged" + ("; the scheduler runs" if self.started else ""))


# --- the spread of first runs ---------------------------------------------------------------------


def first_period(periods: Periods) -> float:
    """The time between a task's runs: its exec period, or its poll period without one."""
    return periods.exec if periods.exec > 0 else periods.poll


def first_offset(name: str, periods: Periods) -> float:
    """Seconds after its definition at which a new task is first looked at: a fraction of its
    first period that depends on its name only (the same in every run, spread evenly)."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 * first_period(periods)


# --- what counts as a change ---------------------------------------------------------------------


def _node_shape(node: Command | Block) -> tuple:
    if isinstance(node, Block):
        return ("block", _node_shape(node.header), _script_shape(node.body),
                tuple((_node_shape(c.header), _script_shape(c.body)) for c in node.clauses))
    return tuple(node.source.text[w.start:w.end] for w in node.words)


def _script_shape(script: Script | None) -> tuple | None:
    return None if script is None else tuple(_node_shape(n) for n in script.commands)


def spec_shape(spec: TaskSpec) -> tuple:
    """A task's definition as comparable data: macros by their text, not by where they stand
    (a task is not changed because a line was added above it)."""
    plain = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
             if f.name not in ("exec_macro", "exit_macros", "defined_at")}
    return (tuple(sorted((k, repr(v)) for k, v in plain.items())), _script_shape(spec.exec_macro),
            tuple(sorted((k, _script_shape(v)) for k, v in spec.exit_macros.items())))


# --- loading --------------------------------------------------------------------------------------


def load_files(interp: Any, files: list[str] | None = None) -> ReloadResult:
    """Load `files` (the first time, or other files from now on) or the files loaded before
    (`reload`); see the module doc.

    Raises a SchedError (file:line:col) and changes no task when a file is wrong."""
    loaded: Loaded | None = interp.extensions.get(RELOAD_KEY)
    if files is not None and loaded is not None:
        loaded.files = list(files)
    elif files is not None:
        loaded = interp.extensions[RELOAD_KEY] = Loaded(list(files))
    if loaded is None:
        raise TaskError(NO_FILES)
    sched = scheduler_of(interp)
    if sched.staging is not None:
        raise TaskError("reload: the files are being loaded already (is `reload` in one of them?)")
    scripts = _read_all(interp, loaded.files)
    staging = sched.staging = TaskStaging()
    collecting = gc.isenabled()  # the loop waits for what follows: no pass over a heap that frees nothing
    gc.disable()
    try:
        reset_script_arguments(interp)  # (a file that consumed $argv last time reads it again)
        for path, script in scripts:
            saved = interp.current_file
            interp.current_file = path
            try:
                with sched.busy_with(f"reload: {path}"):
                    interp.run_toplevel(script)
            finally:
                interp.current_file = saved
        for spec in staging.specs.values():
            check_definable(spec)
        result = _apply(sched, loaded, staging)
    finally:
        sched.staging = None
        if collecting:
            gc.enable()
    loaded.loads += 1
    if staging.run and not sched.running:
        interp.eval("run", "<load of " + ", ".join(loaded.files) + ">")
        result.started = True
    return result


def _read_all(interp: Any, files: list[str]) -> list[tuple[str, Script]]:
    """Parse and check the files in a thread while the loop runs (a thousand tasks take most of
    a second to parse, which would hold up the jobs due meanwhile); in a macro the scheduler runs
    (the loop is running already), here and now."""
    def reading() -> list[tuple[str, Script]]:
        return [(path, _read(interp, path)) for path in files]

    loop = get_loop()
    if loop.is_running():
        return reading()
    return run_until(loop.run_in_executor(None, reading), "reload")


def _read(interp: Any, path: str) -> Script:
    try:
        text = read_script_file(path)
    except OSError as err:
        raise TaskError(f'couldn\'t read file "{path}": {err.strerror or err}') from None
    return interp.read(text, path)


def _apply(sched: Scheduler, loaded: Loaded, staging: TaskStaging) -> ReloadResult:
    result = ReloadResult()
    now = sched.clock.monotonic()
    for name, spec in staging.specs.items():
        entry = sched.tasks.get(name)
        before = loaded.specs.get(name)
        if entry is None:
            entry = sched.define(spec, look=False)
            entry.first_look = now + first_offset(name, spec.periods)
            sched.look_soon(entry)
            result.added.append(name)
        elif before is not None and not entry.deleting and spec_shape(before) == spec_shape(spec):
            result.unchanged.append(name)
        else:
            _change(sched, entry, spec, now)
            result.changed.append(name)
    for name in loaded.specs:
        entry = sched.tasks.get(name)
        if name not in staging.specs and entry is not None and not entry.deleting:
            sched.delete_task(name)
            result.removed.append(name)
    loaded.specs = {name: spec.copy() for name, spec in staging.specs.items()}  # not the live ones: `pause` changes those
    return result


def _change(sched: Scheduler, entry: TaskEntry, spec: TaskSpec, now: float) -> None:
    """A task takes a new definition and keeps its phase: see the module docstring."""
    old = entry.spec.periods
    handle = entry.handle
    scheduled = handle is not None and handle.live
    due = handle.due if scheduled and handle is not None else now
    entry.deleting = False  # a task being deleted that the files define again stays
    sched.define(spec, look=False)
    if scheduled and old == spec.periods:
        return
    if scheduled:
        sched.reschedule(entry, max(now, due - old.poll + spec.periods.poll))
    else:
        sched.look_soon(entry)


def reload_error(err: SchedError) -> TaskError:
    """The error of a reload that applied nothing."""
    return TaskError(f"reload: nothing applied, the tasks run on as they were:\n{err.render()}")
