"""Commands that steer the scheduler from the prompt or a script.

run, stop, status, tasks, jobs, check, kill, delete, pause, resume, wait. The listings take
-json for machine-readable output. They act on the scheduler's own tables (psched.scheduler.loop);
the scheduler's completion, quit check and exit hook are registered where it is made (psched.scheduler.attach).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ..attach import scheduler_of
from ...lang.errors import ScriptError, TaskError
from ..eventloop import run_pending, run_until
from ..jobs import Job, JobState
from ...lang.registry import BUILTINS
from ..loop import Scheduler, TaskEntry
from ...lang.tcllist import join_list
from ..retention import DEFAULT_KEEP_AGE, DEFAULT_KEEP_COUNT
from ..rounds import RoundsConfig, describe_plan, plan_rounds
from ..timing import duration_seconds

cmd = BUILTINS.command


def _flags(argv: list[str], known: dict[str, bool]) -> tuple[dict[str, Any], list[str]]:
    """Split leading -options (those in `known`; True = takes a value) from the other words."""
    opts: dict[str, Any] = {}
    rest: list[str] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        if word in known:
            if known[word]:
                if i + 1 >= len(argv):
                    raise ScriptError(f"{argv[0]}: {word} needs a value")
                opts[word] = argv[i + 1]
                i += 2
                continue
            opts[word] = True
        elif word.startswith("-") and len(word) > 1 and not word[1:].isdigit():
            raise ScriptError(f"{argv[0]}: unknown option {word} (known: {', '.join(known)})")
        else:
            rest.append(word)
        i += 1
    return opts, rest


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _clock_text(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _next_due(sched: Scheduler, entry: TaskEntry) -> float | None:
    handle = entry.handle
    if handle is None or not handle.live or not sched.running:
        return None
    return sched.clock.wall() + (handle.due - sched.clock.monotonic())


def _task_row(sched: Scheduler, entry: TaskEntry) -> dict[str, Any]:
    running = sum(1 for j in entry.jobs_out if sched.jobs.get(j) and sched.jobs[j].state is JobState.RUNNING)
    return {
        "task": entry.name, "state": entry.state(), "host": entry.spec.host, "made": entry.timing.made,
        "nmax": entry.spec.nmax, "running": running, "pending": len(entry.jobs_out) - running,
        "done": entry.done, "failed": entry.failed, "last": entry.last_outcome or None,
        "next": _next_due(sched, entry),
    }


def _summary(sched: Scheduler) -> dict[str, Any]:
    counts = {"pending": 0, "running": 0, "done": 0, "failed": 0}
    for job in sched.jobs.values():
        if job.state is JobState.PENDING:
            counts["pending"] += 1
        elif job.state is JobState.RUNNING:
            counts["running"] += 1
        else:
            counts["done"] += 1
            counts["failed"] += job.failed
    summary = {"scheduler": "running" if sched.running else "stopped", "tasks": len(sched.tasks), "jobs": counts,
               "made": sched.totals["made"]}
    ha = sched.interp.extensions.get("ha")  # psched.scheduler.ha.HA_KEY: a server of a pool (sched --serve --ha)
    if ha is not None:
        summary["ha"] = ha.summary()
    return summary


@cmd("run", "start the scheduler loop: tasks make jobs")
def cmd_run(interp: Any, argv: list[str]) -> str:
    sched = scheduler_of(interp)
    if sched.staging is not None:  # a reload reading its files: run once its tasks are in place
        sched.staging.run = True
        return ""
    sched.claim_home()  # one sched per $SCHED_HOME: refused here, before any job is made
    if not sched.running and any(e.spec.host != "LOCAL" for e in sched.tasks.values()):
        # Connect first, so that jobs an earlier sched left at the controller are adopted
        # (and counted against nmax and npending) before any new job is made.
        try:
            run_until(sched.remote.connect(), "run")
        except Exception:  # the link reports it; jobs wait for the reconnect (or, inside a
            pass           # macro run by the loop, the connection is made by the first job)
        note = sched.remote.orphans_note()
        if note:
            sched.report(note)
    sched.start()
    return ""


@cmd("stop", "pause the scheduler loop: no new jobs; running jobs finish and their exit macros run")
def cmd_stop(interp: Any, argv: list[str]) -> str:
    scheduler_of(interp).stop()
    return ""


@cmd("status ?-json?", "a table of tasks (state, jobs running/done/failed, last outcome, next look) and a jobs summary")
def cmd_status(interp: Any, argv: list[str]) -> str:
    opts, rest = _flags(argv, {"-json": False})
    sched = scheduler_of(interp)
    run_pending()
    rows = [_task_row(sched, e) for e in sorted(sched.tasks.values(), key=lambda e: e.seq)]
    summary = _summary(sched)
    if opts.get("-json"):
        return json.dumps({"tasks": rows, "summary": summary})
    table = _table(["TASK", "STATE", "HOST", "MADE", "RUN", "DONE", "FAIL", "LAST", "NEXT"], [
        [r["task"], r["state"], r["host"], f"{r['made']}" + (f"/{r['nmax']}" if r["nmax"] is not None else ""),
         str(r["running"] + r["pending"]), str(r["done"]), str(r["failed"]), r["last"] or "-", _clock_text(r["next"])]
        for r in rows
    ]) if rows else "no tasks"
    c = summary["jobs"]
    ha = f"\nha: {summary['ha']['text']}" if "ha" in summary else ""
    return (f"{table}\njobs: {c['running']} running, {c['pending']} pending, {c['done']} done ({c['failed']} failed); "
            f"scheduler {summary['scheduler']}{ha}")


@cmd("tasks ?-json?", "the defined tasks")
def cmd_tasks(interp: Any, argv: list[str]) -> str:
    opts, _ = _flags(argv, {"-json": False})
    sched = scheduler_of(interp)
    entries = sorted(sched.tasks.values(), key=lambda e: e.seq)
    if opts.get("-json"):
        return json.dumps([dict(e.spec.describe(), state=e.state()) for e in entries])
    if not entries:
        return "no tasks"
    return _table(["TASK", "STATE", "HOST", "COMMAND"],
                  [[e.name, e.state(), e.spec.host + (" -required" if e.spec.host_required else ""), join_list(e.spec.argv)]
                   for e in entries])


def _job_row(job: Job) -> list[str]:
    elapsed = f"{job.elapsed:.2f}" if job.elapsed is not None else "-"
    return [str(job.id), job.task, job.outcome_text(), job.ran_on or job.host, elapsed, join_list(job.argv)]


@cmd("jobs ?-state STATE? ?-task TASK? ?-json?",
     "the scheduler's jobs (local and controller). Ended jobs are remembered for a retention, by default the newest "
     f"{DEFAULT_KEEP_COUNT} and none that ended more than {DEFAULT_KEEP_AGE / 3600:g} h ago (see `retain`); their "
     "output is not kept (it went to the task's stdout/stderr and to the exit macro)")
def cmd_jobs(interp: Any, argv: list[str]) -> str:
    opts, _ = _flags(argv, {"-json": False, "-state": True, "-task": True})
    sched = scheduler_of(interp)
    run_pending()
    sched.forget_expired()
    jobs = list(sched.jobs.values())
    if "-state" in opts:
        state = opts["-state"].upper()
        valid = {s.value for s in JobState} | {"FAILED"}
        if state not in valid:
            raise ScriptError(f"jobs: unknown state {opts['-state']} (known: {', '.join(sorted(valid))})")
        jobs = [j for j in jobs if (j.failed if state == "FAILED" else j.state.value == state)]
    if "-task" in opts:
        jobs = [j for j in jobs if j.task == opts["-task"]]
    if opts.get("-json"):
        return json.dumps([j.to_json() for j in jobs])
    if not jobs:
        return "no jobs"
    return _table(["JOB", "TASK", "STATE", "HOST", "ELAPSED", "COMMAND"], [_job_row(j) for j in jobs])


def _check_text(data: dict[str, Any]) -> str:
    width = max(len(k) for k in data)
    lines = []
    for key, value in data.items():
        if isinstance(value, float) and key in ("created", "started", "ended"):
            value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
                    value = join_list(str(v) for v in value)
        elif isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items() if v is not None)
        if isinstance(value, str) and "\n" in value:
            value = value.rstrip("\n").replace("\n", "\n" + " " * (width + 2))
        lines.append(f"{key:<{width}}  {value if value is not None else '-'}")
    return "\n".join(lines)


@cmd("retain ?-count N? ?-age S?", "how long ended jobs are remembered: the newest N, none ended more than S "
     "seconds ago; with no option, says the current retention")
def cmd_retain(interp: Any, argv: list[str]) -> str:
    opts, rest = _flags(argv, {"-count": True, "-age": True})
    if rest:
        raise ScriptError('wrong # args: should be "retain ?-count N? ?-age S?"')
    sched = scheduler_of(interp)
    retention = sched.retention
    if "-count" in opts:
        try:
            count = int(opts["-count"])
        except ValueError:
            count = -1
        if count < 0:
            raise ScriptError(f"retain: -count expects a whole number >= 0, got '{opts['-count']}'")
        retention.count = count
    if "-age" in opts:
        retention.age = _duration("retain", "-age", opts["-age"])
    sched.forget_expired()
    return f"ended jobs are remembered: {retention.describe()} ({len(sched.jobs)} in the table, {sched.forgotten} forgotten)"


def _duration(command: str, option: str, text: str) -> float:
    """An option's seconds or duration (timing.duration_seconds), or the command's error."""
    seconds = duration_seconds(text)
    if seconds is None or not seconds < float("inf"):
        raise ScriptError(f"{command}: {option} expects seconds >= 0 or a duration (90, 5m, 1h30m), got '{text}'")
    return seconds


@cmd("check JOB_ID|TASK ?-json? ?-plan?", "everything known about a job or a task; -plan: a rounds task's runs in the current window")
def cmd_check(interp: Any, argv: list[str]) -> str:
    opts, rest = _flags(argv, {"-json": False, "-plan": False})
    if len(rest) != 1:
        raise ScriptError('wrong # args: should be "check JOB_ID|TASK ?-json? ?-plan?"')
    sched = scheduler_of(interp)
    run_pending()
    what = rest[0]
    if opts.get("-plan"):
        return _round_plan(sched, what)
    if what.isdigit():
        data = sched.job(what).to_json(output=True)
    else:
        entry = sched.task(what)
        data = dict(entry.spec.describe())
        data.update(_task_row(sched, entry))
        data["jobs_out"] = sorted(entry.jobs_out)
    if opts.get("-json"):
        return json.dumps(data)
    return _check_text(data)


def _round_plan(sched: Any, name: str) -> str:
    spec = sched.task(name).spec
    if spec.rounds is None:
        raise TaskError(f"check -plan: task {name} has no `rounds` directive, so no plan")
    clock = sched.clock
    plan = plan_rounds(RoundsConfig(spec.rounds, spec.hosts), clock.wall(), spec.rounds_seed, clock.tz)
    return "\n".join(describe_plan(plan, clock.tz))


@cmd("kill JOB_ID", "stop a running job: SIGTERM to its process group, SIGKILL after a grace")
def cmd_kill(interp: Any, argv: list[str]) -> str:
    return scheduler_of(interp).kill(argv[1])


@cmd("delete JOB_ID|TASK", "forget a finished job, or delete a task (no new jobs; removed once its jobs end)")
def cmd_delete(interp: Any, argv: list[str]) -> str:
    sched = scheduler_of(interp)
    if argv[1].isdigit():
        return sched.delete_job(argv[1])
    return sched.delete_task(argv[1])


@cmd("pause TASK ?TASK ...?", "the task makes no new jobs until resumed (its running jobs carry on)")
def cmd_pause(interp: Any, argv: list[str]) -> str:
    sched = scheduler_of(interp)
    for name in argv[1:]:
        sched.set_active(name, False)
    return ""


@cmd("resume TASK ?TASK ...?", "a paused task makes jobs again")
def cmd_resume(interp: Any, argv: list[str]) -> str:
    sched = scheduler_of(interp)
    for name in argv[1:]:
        sched.set_active(name, True)
    return ""


@cmd("wait ?-timeout S? ?TASK ...?", "block until the tasks (default: everything) have made all their jobs and those "
     "have ended; with no TASK, until nothing remains to do: standing tasks (no nmax) run until `stop`, SIGTERM or Ctrl-C")
def cmd_wait(interp: Any, argv: list[str]) -> str:
    opts, names = _flags(argv, {"-timeout": True})
    timeout = None
    if "-timeout" in opts:
        timeout = _duration("wait", "-timeout", opts["-timeout"])
    sched = scheduler_of(interp)
    for name in names:
        entry = sched.task(name)
        if entry.spec.nmax is None and not entry.deleting:
            raise TaskError(f"wait: task {name} has no nmax, so it never finishes (give it nmax, or delete it)")
    target = names or None
    if not sched.ever_ran and not sched.outstanding():
        raise ScriptError("wait: the scheduler is stopped and no jobs are out: `run` first")
    if sched.finished(target):
        return ""
    future = sched.waiter(target)

    async def waiting() -> None:
        await asyncio.wait_for(future, timeout)

    try:
        run_until(waiting(), "wait")
    except asyncio.TimeoutError:
        waiting_for = "; ".join(sched.still_waiting(target)) or "nothing (it ended as the time ran out)"
        notes = run_until(sched.why_out(), "wait")
        said = "".join(f"; {note}" for note in notes)
        raise ScriptError(f"wait: timed out after {timeout:g} s; still waiting for: {waiting_for}{said}") from None
    finally:
        if not future.done():
            future.cancel()
    return ""


