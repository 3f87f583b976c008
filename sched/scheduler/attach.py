"""Where a Scheduler is made: the one place that builds it, hands it its backends and ties it
to the interpreter and the shell.

    sched = scheduler_of(interp)    # the interpreter's scheduler, made on first use
    link = controller_of(sched)     # its controller link (its remote backend)

A Scheduler reports to nobody it imports: its backends (psched.scheduler.local, psched.scheduler.remote)
are handed a JobSink (the scheduler) and the scheduler is handed them. Made here, it also
registers its face to the shell on the interpreter's named hooks: completion words
(`interp.completers`), the quit check (`interp.quit_checks`: jobs still out), the exit hook
(`interp.exit_hooks`: kill local jobs, leave controller jobs to the next sched, stop a daemon
this sched started) and where its messages go (stderr, above the prompt).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from ..lang.errors import ScriptError
from ..lang.lazylog import load as load_logging
from .eventloop import get_loop, run_until
from .extkeys import SCHED_NAME_KEY, SCHEDULER_KEY
from .home import SchedHome
from .jobs import Job
from .loop import Scheduler
from .syncdefs import sync_defs

if TYPE_CHECKING:
    from .local import LocalBackend
    from .remote import ControllerLink

__all__ = ["attach_shell", "SCHEDULER_KEY", "SCHED_NAME_KEY", "scheduler_of", "controller_of", "controller_in_use", "controller_subcommands", "controller_host_words"]



def _backends() -> tuple[type[LocalBackend], type[ControllerLink]]:
    """The backend classes, imported when the first Scheduler is made (or asked about): they
    load pclient's job runner and pcontrol's client, which a `sched -c` that schedules
    nothing never needs (see tests/test_layers.py, test_sched_c_loads_no_backend)."""
    from .local import LocalBackend
    from .remote import ControllerLink

    return LocalBackend, ControllerLink


def scheduler_of(interp: Any) -> Scheduler:
    """The interpreter's scheduler, made on first use with its real backends."""
    sched = interp.extensions.get(SCHEDULER_KEY)
    if sched is None:
        load_logging()  # the scheduler and its backends log with plain logging
        local, link = _backends()
        home = SchedHome.locate(interp.extensions.get(SCHED_NAME_KEY))
        sched = interp.extensions[SCHEDULER_KEY] = Scheduler(interp, home=home)
        sched.local = local(sched)
        sched.remote = link(sched)
        from .syncjobs import SyncBackend  # pcontrol's client face: loaded with the backends, on first use

        sched.syncs = SyncBackend(sched, lambda: sync_defs(interp), lambda: controller_of(sched))
        attach_shell(interp, sched)
    return sched


def controller_in_use(sched: Scheduler) -> Any:
    """The address of the controller this scheduler has connected to (a ControllerAddress), or
    None: a scheduler of local jobs only, or one not connected yet. Read from any thread."""
    link = sched.remote
    if not isinstance(link, _backends()[1]) or link.client is None:
        return None
    return link.address


def controller_of(sched: Scheduler) -> ControllerLink:
    """The scheduler's controller link (its remote backend), made when it has another one."""
    _, controller_link = _backends()
    link = sched.remote
    if not isinstance(link, controller_link):
        link = controller_link(sched)
        sched.remote = link
    return link


# --- the scheduler's face to the shell -------------------------------------------------------------

_TASK_ARG = {"pause", "resume", "wait", "check", "delete"}
_JOB_ARG = {"check", "kill", "delete"}
_HOST_VERBS = {("host", "on"), ("host", "off"), ("host", "delete"), ("host", "retry"), ("check", "host")}


def attach_shell(interp: Any, sched: Scheduler) -> None:
    """Register the scheduler's completer, quit check, exit hook and messages."""
    interp.completers.append(complete_sched_words)
    interp.quit_checks.append(jobs_out_reason)
    interp.exit_hooks.append(shutdown)
    if sched.on_message is None:
        sched.on_message = _print_message


def complete_sched_words(interp: Any, words: list[str], current: str) -> list[str]:
    """Task names and job ids where the prompt commands take them; controller words and hosts."""
    sched = interp.extensions.get(SCHEDULER_KEY)
    if not words:
        return []
    name = words[0]
    out: list[str] = []
    if sched is not None:
        if name in _TASK_ARG:
            out += sorted(sched.tasks)
        if name in _JOB_ARG:
            out += [str(j) for j in sorted(sched.jobs)]
        if name in ("jobs",) and len(words) >= 2 and words[-1] == "-task":
            out += sorted(sched.tasks)
    if name == "controller":
        if len(words) == 1:
            out += controller_subcommands()
        else:
            out += controller_host_words(interp, words)
    return out


def controller_subcommands() -> list[str]:
    """What may follow `controller` (for completion): ours, then pcontrol's command words."""
    from .remote import MANAGE  # at the first completion only, like pcontrol's verbs below

    words = list(MANAGE)
    try:
        # imported at the first completion only: pcontrol's verb table loads its controller and
        # sqlite3 journal (~80 ms), which `import psched` must not (see tests/test_layers.py)
        from pcontrol.verbs import TABLE

        words += sorted({c.path.split()[0] for c in TABLE.root.commands()} - set(MANAGE) - {"shutdown"})
    except Exception:  # completion must never fail because of this
        pass
    return words


def controller_host_words(interp: Any, words: list[str]) -> list[str]:
    """After `controller host add|on|...` or `controller check`: subcommands, then host names."""
    sched = interp.extensions.get(SCHEDULER_KEY)
    link = sched.remote if sched is not None else None
    hosts = sorted(link.hosts) if isinstance(link, _backends()[1]) else []
    if len(words) == 2 and words[1] == "host":
        return ["add", "delete", "on", "off", "retry"]
    if len(words) == 2 and words[1] == "check":
        return ["host", "job"]
    if len(words) == 3 and (words[1], words[2]) in _HOST_VERBS:
        return hosts
    return []


def jobs_out_reason(interp: Any) -> str | None:
    """The quit check: jobs still out make `quit` ask (at the prompt) or refuse (in a script)."""
    sched = interp.extensions.get(SCHEDULER_KEY)
    if sched is None:
        return None
    out = sched.outstanding()
    if not out:
        return None
    local = sum(1 for j in out if j.local)
    remote = len(out) - local
    parts = []
    if local:
        parts.append(f"{local} local (they will be killed)")
    if remote:
        parts.append(f"{remote} at the controller (the next sched collects them)")
    return f"{len(out)} job(s) still out: " + ", ".join(parts)


def shutdown(interp: Any) -> None:
    """The exit hook: kill local jobs still out (recorded KILLED, their exit macros run), leave
    controller jobs to the next sched, stop the daemon when this sched started it and has
    nothing left out there, and give up the home's lock."""
    sched = interp.extensions.get(SCHEDULER_KEY)
    if sched is None:
        return
    try:
        sched.stop()
        _kill_local_jobs(sched)
        run_until(sched.syncs.aclose(), "quit", interruptible=False, leavable=False)  # sync runs end at pcontrol
        _leave_controller(sched)
    finally:
        sched.release_home()


def _kill_local_jobs(sched: Scheduler) -> None:
    """Kill every local job still out, also one still starting, and wait (bounded) until each
    one's end is recorded and its exit macro has run."""
    from .local import KILL_WAIT  # loaded already: this sched has its backends

    local = [job for job in sched.outstanding() if job.local]
    ended = get_loop().create_future()

    def listener(job: Job) -> None:
        if job.done and all(j.done for j in local) and not ended.done():
            ended.set_result(None)

    sched.job_listeners.append(listener)
    try:
        for job in local:
            sched.local.kill(job)  # a job still starting is killed as soon as it has started
        if not all(j.done for j in local):
            run_until(asyncio.wait_for(ended, KILL_WAIT), "quit", interruptible=False, leavable=False)
        run_until(sched.local.aclose(), "quit", interruptible=False, leavable=False)
    except (asyncio.TimeoutError, ScriptError):
        left = sum(1 for j in local if not j.done)
        sched.report(f"{left} local job(s) did not end within {KILL_WAIT:g} s of being killed")
    finally:
        sched.job_listeners.remove(listener)


def _leave_controller(sched: Scheduler) -> None:
    link = sched.remote
    controller = isinstance(link, _backends()[1])
    # a pcontrol stopped beside sched (a service's stop signals every process of it) is gone
    reachable = controller and link.connected
    try:
        run_until(link.aclose(), "quit", interruptible=False, leavable=False)
    except ScriptError:
        return
    out = link.jobs_out()
    if out:
        if reachable and link.started_daemon:  # (a daemon the user did not start stays, unsaid)
            sched.report(f"left pcontrol running in {link.paths.home}: it holds {out} job(s) of this sched; "
                         "the next sched collects them and runs their exit macros (`pcontrol stop -kill` "
                         "ends them)")
        return
    sched.end_run()  # nothing left for a next sched to go on with
    if controller and link.started_daemon:
        outcome = link.stop_daemon()
        if outcome.ok:
            sched.report(f"stopped pcontrol (this sched started it): {outcome.message}")


def _print_message(text: str) -> None:
    # looked up at each call: the shell swaps sys.stderr while its prompt is on screen
    sys.stderr.write(f"sched: {text}\n")
    sys.stderr.flush()
