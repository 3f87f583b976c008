"""Jobs as the scheduler knows them: what was made, where it runs, how it ended.

A Job is made by a task at a look (psched.scheduler.loop), runs locally (psched.scheduler.local) or at
the controller (psched.scheduler.remote), and ends with exactly one Outcome (the vocabulary sched
shares with pcontrol: pcontrol.outcome). The scheduler's job table
holds local and controller jobs alike; `check`, `kill`, `delete` and `status` act on it.

Backends and the scheduler meet through the two interfaces declared here, as pcontrol's host
table meets its controller through a HostListener: a Backend is what the scheduler calls, a
JobSink (the scheduler) is what a backend reports to. Neither imports the other.
"""

from __future__ import annotations

import signal as _signal
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, Protocol

from pcontrol.outcome import Outcome

__all__ = ["Backend", "Job", "JobSink", "JobState", "Outcome", "signal_name", "WithoutController"]


class JobState(str, Enum):
    """Where a job is in its life."""

    PENDING = "PENDING"
    """Made, not started yet (waiting for a controller host)."""
    RUNNING = "RUNNING"
    """Its process runs."""
    DONE = "DONE"
    """It ended; `outcome` says how."""


@dataclass(slots=True)
class Job:
    """One job of a task."""

    id: int
    task: str
    argv: list[str]
    host: str  # LOCAL, NONE or a host name (the rule); `ran_on` is where it really ran
    host_required: bool = False
    state: JobState = JobState.PENDING
    outcome: Outcome | None = None
    status: int | None = None
    signal: int | None = None
    reason: str = ""
    ran_on: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    elapsed: float | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    controller_id: str | None = None
    pid: int | None = None
    macro: str = ""  # which task.exit macro ran ("0", "timeout", "default", "" for none)
    macro_error: str = ""
    timeout: float | None = None
    pending: float | None = None
    retry: int = 0  # a controller job that ends DOWN runs again, up to this many times
    outputs: Mapping[str, Any] = field(default_factory=dict)  # stream -> pclient.output.OutputFile: its task's files (shared, read-only)
    joblog: str | None = None  # its task's `joblog FILE`, kept here: the task may be gone when it ends
    sync: str | None = None  # a task's `sync NAME`: the job is that whole synchronized run
    noskew: bool = False  # `host ... -noskew`: pcontrol never sends it to a SKEWED host
    not_before: float | None = None  # its planned start (wall clock): a rounds run, made ahead (roundjobs.py)
    withdrawn: bool = False  # killed before its planned start because its task paused or went: not a run
    vars: dict[str, str] = field(default_factory=dict)  # extra variables of its task.exit macro
    env: dict[str, str] = field(default_factory=dict)  # added to its environment
    cwd: str | None = None  # its task's `cwd DIR`: where it runs (else sched's directory, or its agent's)
    inbox: tuple[str, ...] = ()  # the switchboard's messages for it, `SENDER TEXT` (psched.scheduler.switchboard)

    @property
    def local(self) -> bool:
        return self.host == "LOCAL"

    @property
    def done(self) -> bool:
        return self.state is JobState.DONE

    @property
    def failed(self) -> bool:
        """Done and not a clean exit 0."""
        return self.done and not (self.outcome is Outcome.EXIT and self.status == 0)

    def outcome_text(self) -> str:
        """`EXIT 0`, `CRASH SIGSEGV`, `TIMEOUT`... or the state while it is not done."""
        if self.outcome is None:
            return self.state.value
        if self.outcome is Outcome.EXIT:
            return f"EXIT {self.status}"
        if self.outcome is Outcome.CRASH and self.signal is not None:
            return f"CRASH {signal_name(self.signal)}"
        return self.outcome.value

    def to_json(self, output: bool = False) -> dict:
        data = {
            "id": self.id, "task": self.task, "argv": list(self.argv), "host": self.host,
            "host_required": self.host_required, "ran_on": self.ran_on, "state": self.state.value,
            "outcome": self.outcome.value if self.outcome else None, "status": self.status,
            "signal": self.signal, "reason": self.reason, "created": self.created, "started": self.started,
            "ended": self.ended, "elapsed": self.elapsed, "stdout_bytes": self.stdout_bytes,
            "stderr_bytes": self.stderr_bytes, "controller_id": self.controller_id, "pid": self.pid,
            "macro": self.macro, "macro_error": self.macro_error,
        }
        if output:
            data["stdout"] = self.stdout
            data["stderr"] = self.stderr
        return data


def signal_name(number: int) -> str:
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --- the seams between the scheduler and its backends ----------------------------------------------


class JobSink(Protocol):
    """What a backend tells of its jobs: the scheduler, handed to each backend when it is made."""

    output_limit: int
    """Bytes of each output stream kept per job."""

    def job_started(self, job: Job, ran_on: str = "", pid: int | None = None,
                    controller_id: str | None = None) -> None: ...

    def job_ended(self, job: Job, outcome: Outcome, status: int | None = None, signal: int | None = None,
                  stdout: str = "", stderr: str = "", stdout_bytes: int = 0, stderr_bytes: int = 0,
                  elapsed: float | None = None, reason: str = "", ran_on: str = "", quiet: bool = False,
                  ended: float | None = None, written: tuple[str, ...] = (), outbox: tuple[str, ...] = ()) -> None: ...

    def adopt(self, record: dict[str, Any]) -> Job | None:
        """A job an earlier sched submitted, taken back (None: its task is not defined here)."""

    def report(self, text: str) -> None:
        """A message for the user."""

    home: Any
    """The scheduler's own files (psched.scheduler.home.SchedHome), or None."""

    def claim_home(self) -> None:
        """Be the only sched on the home; HomeBusy when another one is."""

    def job_sent(self, job: Job) -> None:
        """The controller has the job (or it ended before reaching it): the run ledger's count is sure."""

    def flush_records(self) -> None:
        """Write the records held this turn (the run ledger's): the backend is about to send
        something that depends on them."""

    def end_is_plain(self, job: Job, outcome: Outcome, status: int | None) -> bool:
        """Ending `job` so would run no exit macro and write nothing of its own: were it ended
        twice (a crash in between), nothing would show."""

    def controller_alert(self, record: dict[str, Any]) -> None:
        """pcontrol's `alert` event (an episode about a host started or ended): see alertqueue.py."""


class Backend(Protocol):
    """Where jobs run: `submit` starts a job, which later goes to the sink's job_started / job_ended."""

    home: Path | None
    """The $SCHED_HOME whose run ledger counts this backend's jobs across restarts (None: none)."""

    def submit(self, job: Job) -> None: ...

    def kill(self, job: Job) -> bool:
        """Kill a job of this backend; False when it does not know the job."""

    def task_defined(self, task: str) -> None:
        """A task was (re)defined: jobs of it that the backend holds can be taken back."""

    def lead(self, host: str) -> float:
        """Seconds before its planned start that a job for `host` is best made (a pull probe's
        host: the controller tells the probe its run time ahead); 0: at its start."""

    submit_keys_held: set[str] | None
    """The submit keys of every job of ours the controller holds, known after a connect (None:
    not known; a local backend: always None). The run ledger drops jobs made but never sent."""

    def submit_key(self, job: Job) -> str | None:
        """The key by which the controller would know `job` (None: this backend has none)."""

    def orphans_note(self) -> str | None:
        """What the backend holds of an earlier sched for tasks not defined here (None: nothing)."""

    async def connect(self) -> None:
        """Be ready to take jobs (and take back an earlier sched's); raise what went wrong."""

    async def aclose(self) -> None:
        """sched is leaving: let go of what the backend holds (local jobs are killed)."""

    def jobs_out(self) -> int:
        """Jobs submitted here that have not ended."""

    async def why_out(self) -> str | None:
        """Why its jobs out have not ended, where the backend knows more than sched does (a
        controller's jobs that wait for a host), for `wait`'s timeout; None: nothing to add."""


class WithoutController:
    """The parts of a Backend with no controller behind it, to inherit: nothing of an earlier
    sched to take back, no submit keys, nothing to connect to or let go of."""

    home: Path | None = None
    submit_keys_held: set[str] | None = None

    def task_defined(self, task: str) -> None:
        pass

    def lead(self, host: str) -> float:
        return 0.0

    def submit_key(self, job: Job) -> str | None:
        return None

    def orphans_note(self) -> str | None:
        return None

    async def connect(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def why_out(self) -> str | None:
        return None
