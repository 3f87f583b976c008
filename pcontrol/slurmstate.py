"""Slurm's words and ours: what pcontrol sends to `sbatch`, what it reads back from `squeue`,
and what a Slurm job state means as an outcome. Pure functions over text and numbers (the
time is an argument); the process that runs the commands is pcontrol/slurm.py.

A job of ours in Slurm carries everything a later pcontrol needs to take it over:

    --job-name  pcontrol.<tag>.<word>    <tag>: the controller's token and the host's name,
                                          hashed; <word>: the job's agent word (17, 17.1)
    --comment   pcontrol timeout=S pending_until=T limit=B    (each only when set)
    --output/--error  <output dir>/<name>.out, .err            (read when it ends)

State mapping (nothing is lost: Slurm's state, reason and exit code are in the reason):

    COMPLETED                  EXIT 0
    FAILED, ExitCode n:0       EXIT n            FAILED, ExitCode 0:s -> CRASH, signal s
    TIMEOUT, DEADLINE          TIMEOUT           (Slurm's own limit: our --time ceiling)
    CANCELLED by us            KILLED / TIMEOUT / PENDING, as we cancelled it for
    CANCELLED by anyone else   KILLED, with the reason
    OUT_OF_MEMORY              CRASH, signal 9 (or the one in ExitCode), with the reason
    NODE_FAIL, BOOT_FAIL, PREEMPTED, FAILED 0:0, anything unknown
                               lost (DOWN, or run again while -retry allows)
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
import shlex
import time
from dataclasses import dataclass

from pclient import protocol as agent_protocol

#: squeue's -O fields, in this order; Name is last because another user's may hold "|".
SQUEUE_FIELDS = ("JobID", "State", "Reason", "exit_code", "StartTime", "EndTime",
                 "Comment", "Name")
SQUEUE_FORMAT = ",".join(f"{name}:|" for name in SQUEUE_FIELDS)
NAME_PREFIX = "pcontrol."

#: States in which the job is still Slurm's business (pending, running or on its way out).
ACTIVE_STATES = frozenset({
    "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
    "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
    "RESV_DEL_HOLD", "SPECIAL_EXIT", "POWER_UP_NODE", "UPDATE_DB"})
#: States that lose the job (the node or Slurm failed it): DOWN, or a retry.
LOST_STATES = frozenset({"NODE_FAIL", "BOOT_FAIL", "PREEMPTED"})

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Cancel(str, enum.Enum):
    """Why pcontrol itself cancelled a job in Slurm (what the CANCELLED means)."""

    KILL = "kill"            #: `kill`, `delete -force`, or a stray of ours
    TIMEOUT = "timeout"      #: it ran past its -timeout
    PENDING = "pending"      #: it was still pending in Slurm past its -pending time


def host_tag(token: str | None, host: str) -> str:
    """The part of our job names that tells this controller's jobs on this host from any
    other's: the same token and host name give the same tag after a restart."""
    digest = hashlib.sha256(f"{token or ''}\0{host}".encode()).hexdigest()
    return digest[:10]


def job_name(tag: str, word: str) -> str:
    return f"{NAME_PREFIX}{tag}.{word}"


def word_of(tag: str, name: str) -> str | None:
    """The agent word in one of our job names, None if the name is not ours."""
    prefix = f"{NAME_PREFIX}{tag}."
    return name[len(prefix):] if name.startswith(prefix) else None


def time_minutes(timeout: float) -> int:
    """Slurm's --time for our timeout: whole minutes, rounded up (a ceiling; pcontrol
    itself ends the job at the exact deadline), at least one."""
    return max(1, math.ceil(timeout / 60.0))


@dataclass(frozen=True)
class Limits:
    """Ours, kept in the job's --comment so that a later pcontrol enforces them too."""

    timeout: float | None = None
    pending_until: float | None = None      # wall clock
    output_limit: int = agent_protocol.DEFAULT_OUTPUT_LIMIT

    def comment(self) -> str:
        words = ["pcontrol"]
        if self.timeout is not None:
            words.append(f"timeout={self.timeout!r}")
        if self.pending_until is not None:
            words.append(f"pending_until={self.pending_until!r}")
        words.append(f"limit={self.output_limit}")
        return " ".join(words)

    @classmethod
    def from_comment(cls, comment: str) -> "Limits":
        values: dict[str, str] = {}
        for word in comment.split():
            key, _, value = word.partition("=")
            values[key] = value
        try:
            return cls(timeout=float(values["timeout"]) if "timeout" in values else None,
                       pending_until=(float(values["pending_until"])
                                      if "pending_until" in values else None),
                       output_limit=int(values.get("limit",
                                                   agent_protocol.DEFAULT_OUTPUT_LIMIT)))
        except ValueError:
            return cls()


def batch_script(run: agent_protocol.Run, host: str, start_file: str | None = None) -> str:
    """The job as a batch script: its environment added, its directory, then exec of its
    argv (no shell in between once it runs, as with an agent; 127 when it cannot start).
    `start_file`: where it first writes the exact time it starts (Slurm's StartTime has
    whole seconds; our timeout counts from this)."""
    lines = ["#!/bin/sh", f"# pcontrol job {run.job} on host {host}"]
    if start_file is not None:
        lines.append(f"date +%s.%N > {shlex.quote(start_file)} 2>/dev/null || :")
    for key, value in sorted(run.env.items()):
        if not _SHELL_NAME.fullmatch(key):
            raise ValueError(f"environment name {key!r} cannot be set in a batch script")
        lines.append(f"{key}={shlex.quote(value)}; export {key}")
    if run.cwd:
        lines.append(f"cd -- {shlex.quote(run.cwd)} || exit 127")
    lines.append("exec " + shlex.join(run.argv))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SlurmOptions:
    """A Slurm host's settings (`host add NAME -slurm ...`)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    sbatch: str | None = None        # extra sbatch options, shell words
    output: str | None = None        # directory of the jobs' output files

    def to_record(self) -> dict[str, str | None]:
        return {"partition": self.partition, "account": self.account, "qos": self.qos,
                "sbatch": self.sbatch, "output": self.output}

    @classmethod
    def from_record(cls, record: dict[str, str | None]) -> "SlurmOptions":
        return cls(**{key: record.get(key) for key in
                      ("partition", "account", "qos", "sbatch", "output")})

    def extra(self) -> list[str]:
        """The -sbatch words (ValueError when they do not split as shell words)."""
        return shlex.split(self.sbatch or "")


def sbatch_argv(options: SlurmOptions, run: agent_protocol.Run, *, name: str, output: str,
                limits: Limits) -> list[str]:
    argv = ["sbatch", "--parsable", "--no-requeue", f"--job-name={name}",
            f"--output={output}.out", f"--error={output}.err", f"--comment={limits.comment()}"]
    if run.timeout is not None:
        argv.append(f"--time={time_minutes(run.timeout)}")
    for flag, value in (("--partition", options.partition), ("--account", options.account),
                        ("--qos", options.qos), ("--chdir", run.cwd)):
        if value:
            argv.append(f"{flag}={value}")
    argv.extend(options.extra())
    return argv


def parse_sbatch(stdout: str) -> str:
    """The job id in `sbatch --parsable`'s answer (`123` or `123;cluster`)."""
    first = stdout.strip().splitlines()[0] if stdout.strip() else ""
    job_id = first.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"sbatch answered {stdout.strip()!r}, not a job id")
    return job_id


# -- what squeue says ---------------------------------------------------------------------

@dataclass(frozen=True)
class SlurmJob:
    """One job as squeue shows it."""

    job_id: str
    state: str
    reason: str
    exit_code: int | None       # a wait status (status << 8 | signal)
    start: float | None         # wall clock, whole seconds
    end: float | None
    comment: str
    name: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def running(self) -> bool:
        return self.state not in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                                  "RESV_DEL_HOLD", "SPECIAL_EXIT") and self.start is not None

    def describe(self) -> str:
        """Slurm's own words for it, for the reason."""
        text = f"Slurm job {self.job_id} {self.state}"
        if self.exit_code is not None:
            text += f", ExitCode {self.exit_code >> 8}:{self.exit_code & 0x7f}"
        if self.reason and self.reason not in ("None", "(null)"):
            text += f", Reason={self.reason}"
        return text


def _slurm_time(text: str) -> float | None:
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None       # N/A, Unknown, None


def parse_squeue(text: str) -> list[SlurmJob]:
    """Rows of `squeue -h -O SQUEUE_FORMAT`; lines that do not parse are skipped."""
    jobs = []
    for line in text.splitlines():
        parts = line.split("|", len(SQUEUE_FIELDS) - 1)
        if len(parts) != len(SQUEUE_FIELDS):
            continue
        job_id, state, reason, code, start, end, comment, name = parts
        if name.endswith("|"):
            name = name[:-1]
        try:
            exit_code: int | None = int(code)
        except ValueError:
            exit_code = None
        jobs.append(SlurmJob(job_id=job_id.strip(), state=state.strip().split()[0]
                             if state.strip() else "", reason=reason.strip(),
                             exit_code=exit_code, start=_slurm_time(start),
                             end=_slurm_time(end), comment=comment.strip(), name=name.strip()))
    return jobs


# -- what a finished job means --------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """How one ended Slurm job ends for us: an outcome, or lost (`outcome` None)."""

    outcome: agent_protocol.Outcome | None
    reason: str
    status: int | None = None
    signal: int | None = None


def verdict(job: SlurmJob, cancelled: Cancel | None, limits: Limits) -> Verdict:
    """What an ended (not active) Slurm job comes to. `cancelled`: why we cancelled it,
    if we did (its own end wins when it came first)."""
    Outcome = agent_protocol.Outcome
    code = job.exit_code or 0
    status, sig = code >> 8, code & 0x7F
    said = job.describe()
    state = job.state
    if state == "COMPLETED":
        return Verdict(Outcome.EXIT, f"exited with status {status} ({said})", status=status)
    if state == "FAILED":
        if sig:
            return Verdict(Outcome.CRASH, f"ended by signal {sig} ({said})", signal=sig)
        if status:
            return Verdict(Outcome.EXIT, f"exited with status {status} ({said})",
                           status=status)
        return Verdict(None, f"{said}: failed without an exit status")
    if state in ("TIMEOUT", "DEADLINE"):
        return Verdict(Outcome.TIMEOUT, f"Slurm ended it at its time limit ({said})",
                       signal=sig or None)
    if state == "CANCELLED":
        if cancelled is Cancel.TIMEOUT:
            return Verdict(Outcome.TIMEOUT, f"ran longer than its timeout of "
                           f"{limits.timeout:g} s; cancelled in Slurm ({said})",
                           signal=sig or None)
        if cancelled is Cancel.PENDING:
            return Verdict(Outcome.PENDING, f"still pending in Slurm at the end of its "
                           f"pending time; cancelled there ({said})")
        if cancelled is Cancel.KILL:
            return Verdict(Outcome.KILLED, f"killed on request; cancelled in Slurm ({said})",
                           signal=sig or None)
        return Verdict(Outcome.KILLED, f"cancelled in Slurm, not by pcontrol ({said})",
                       signal=sig or None)
    if state == "OUT_OF_MEMORY":
        return Verdict(Outcome.CRASH, f"out of memory ({said})", signal=sig or 9)
    if state in LOST_STATES:
        return Verdict(None, said)
    return Verdict(None, f"{said}: a state pcontrol does not know")


def pending_expired(job: SlurmJob, limits: Limits, now: float) -> bool:
    """Still waiting in Slurm's queue past its pending time (`now`: wall clock)."""
    return (limits.pending_until is not None and job.active and not job.running
            and now >= limits.pending_until)


def start_time(job: SlurmJob, recorded: str | None) -> float | None:
    """When a running job really started: the time its script recorded (`date +%s.%N`),
    else Slurm's StartTime plus the second it may have truncated (never early)."""
    if recorded:
        try:
            value = float(recorded.strip())
            if math.isfinite(value):
                return value
        except ValueError:
            pass
    return None if job.start is None else job.start + 1.0


def timeout_due(job: SlurmJob, limits: Limits, started: float | None) -> float | None:
    """Wall-clock time at which a running job has outlived its timeout, None when it has
    no timeout or has not started."""
    if limits.timeout is None or not job.running or started is None:
        return None
    return started + limits.timeout
