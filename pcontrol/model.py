"""The controller's data: job and host records and their states.

Plain mutable dataclasses owned by the Controller; `to_record()` gives the JSON form used
in replies, events and the journal, `from_record()` reads it back.

pcontrol keeps a Job per pending or unharvested job, and 100,000 are ordinary, so a Job is
lean: __slots__ (a quarter of the memory of a __dict__), and its argv and attempts are
tuples, which the cyclic garbage collector stops tracking (a list it would visit on every
full collection, and full collections over 500,000 objects stop the loop for 200 ms). Once
its owner has harvested it, a job is kept for the retention as a RetainedJob: the same fields
and records in a quarter of the memory (~0.35 KB, where its Job took 1.5 KB with its strings
and its timer).
The records read a state's or an outcome's text as `_value_`, the member's attribute: `.value`
goes through enum's descriptor, ten times slower, and a job's records are made ~10 times.
"""

from __future__ import annotations

import collections
import enum
import operator
import struct
from dataclasses import dataclass, field
from typing import Any

from .outcome import Outcome

__all__ = ["DEFAULT_OUTPUT_LIMIT", "Host", "HostState", "Job", "JobState", "Outcome", "RetainedJob",
           "Sharing", "parse_enum"]

#: Default bytes kept per output stream of a job.
DEFAULT_OUTPUT_LIMIT = 1024 * 1024


class JobState(str, enum.Enum):
    """Where a job is in its life."""

    PENDING = "PENDING"   #: waiting for a free slot on a host it may run on
    BUSY = "BUSY"         #: sent to an agent (running or about to)
    DONE = "DONE"         #: finished; see its Outcome


class HostState(str, enum.Enum):
    """Where a host is in its life."""

    OFF = "OFF"               #: switched off by `host off`; not used, not retried
    DOWN = "DOWN"             #: not connected; retried with backoff; `reason` says why
    CONNECTING = "CONNECTING" #: the agent is being started
    IDLE = "IDLE"             #: connected, with at least one free slot
    BUSY = "BUSY"             #: connected, every slot in use


def parse_enum(enum_type: type[enum.Enum], word: str) -> Any:
    """Case-insensitive lookup of an enum member by value; ValueError lists the choices."""
    for member in enum_type:
        if member.value.lower() == word.lower():
            return member
    raise ValueError(word)


#: Job.to_row's fields kept only when not None, and those kept only when true (read with one
#: attrgetter each: a row is made 3-4 times a job).
_ROW_UNLESS_NONE = ("host", "timeout", "cwd", "owner", "task", "not_before", "status", "signal",
                    "ran_on", "pid", "started", "ended", "elapsed", "harvested", "avoid", "queued",
                    "unknown_since", "batch_id")
_ROW_UNLESS_FALSE = ("required", "spool", "spooled", "noskew", "kill_requested", "delete_requested",
                     "stdout_truncated", "stderr_truncated", "reason", "priority", "retry",
                     "retries_left", "stdout_bytes", "stderr_bytes")
_row_unless_none = operator.attrgetter(*_ROW_UNLESS_NONE)
_row_unless_false = operator.attrgetter(*_ROW_UNLESS_FALSE)


@dataclass(slots=True)
class Job:
    id: int
    argv: tuple[str, ...]
    submitted: float                      # wall clock
    host: str | None = None               # the host asked for (preferred or required)
    required: bool = False
    timeout: float | None = None          # run time limit, enforced by the agent
    pending_timeout: float | None = None  # limit on the time spent PENDING
    priority: int = 0
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    owner: str | None = None              # the scheduler that submitted it
    task: str | None = None               # and its task
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    spool: bool = False                   # -spool: its agent keeps its whole output for `output`
    spooled: bool = False                 # ... and said it did, when it ended
    mail: bool = False                    # -mail: its agent gives it $PSCHED_INBOX / $PSCHED_OUTBOX
    inbox: tuple[str, ...] = ()           # -inbox: the lines of its $PSCHED_INBOX
    outbox: tuple[str, ...] = ()          # the lines it wrote to $PSCHED_OUTBOX, when it ended
    state: JobState = JobState.PENDING
    outcome: Outcome | None = None
    status: int | None = None
    signal: int | None = None
    ran_on: str | None = None
    pid: int | None = None
    started: float | None = None
    ended: float | None = None
    elapsed: float | None = None
    reason: str = ""
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    harvested: float | None = None        # wall clock of the owner's acknowledgement
    kill_requested: bool = False
    retry: int = 0                        # -retry N: runs again up to N times after DOWN
    retries_left: int = 0
    attempts: tuple[dict[str, Any], ...] = ()   # earlier runs, lost
    avoid: str | None = None              # the host lost by the last attempt
    queued: float | None = None           # wall clock it last entered the queue (a retry)
    unknown_since: float | None = None    # wall clock its agent was lost; awaiting a report
    delete_requested: bool = False        # `delete -force` of a live job: forget it once ended
    batch_id: str | None = None           # its id in a batch system (a Slurm host's job)
    noskew: bool = False                  # -noskew: never dispatched to a SKEWED host
    not_before: float | None = None       # -not-before: wall clock of its planned start; held until then

    @property
    def agent_word(self) -> str:
        """The job's name in the agent protocol: its id, and for a retry its attempt too
        (`17.1`), so that an agent never takes a retry for an earlier attempt it may still
        run (or have taken over), nor an earlier attempt's report for the retry's."""
        return f"{self.id}.{len(self.attempts)}" if self.attempts else str(self.id)

    @property
    def pending_deadline(self) -> float | None:
        """Wall-clock time when a still PENDING job ends with outcome PENDING (counted from
        its submission, or from its planned start (-not-before) when later, or from its requeue
        for a retry)."""
        if self.pending_timeout is None:
            return None
        if self.queued is not None:
            return self.queued + self.pending_timeout
        return max(self.submitted, self.not_before or 0.0) + self.pending_timeout

    def to_record(self, *, output: bool = False) -> dict[str, Any]:
        record = {
            "id": self.id, "argv": list(self.argv), "submitted": self.submitted,
            "host": self.host, "required": self.required, "timeout": self.timeout,
            "pending": self.pending_timeout, "priority": self.priority, "cwd": self.cwd,
            "env": dict(self.env), "owner": self.owner, "task": self.task,
            "output_limit": self.output_limit, "spool": self.spool, "spooled": self.spooled,
            "noskew": self.noskew, "not_before": self.not_before,
            "state": self.state._value_,
            "outcome": self.outcome._value_ if self.outcome else None,
            "status": self.status, "signal": self.signal, "ran_on": self.ran_on,
            "pid": self.pid, "started": self.started, "ended": self.ended,
            "elapsed": self.elapsed, "reason": self.reason,
            "stdout_bytes": self.stdout_bytes, "stderr_bytes": self.stderr_bytes,
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "harvested": self.harvested, "kill_requested": self.kill_requested,
            "retry": self.retry, "retries_left": self.retries_left,
            "attempts": [dict(a) for a in self.attempts], "avoid": self.avoid,
            "queued": self.queued, "unknown": self.unknown_since is not None,
            "unknown_since": self.unknown_since, "delete_requested": self.delete_requested,
            "batch_id": self.batch_id,
        }
        if self.mail:  # only when used: the journal writes every record of every job
            record.update(mail=True, inbox=list(self.inbox), outbox=list(self.outbox))
        if output:
            record["stdout"] = self.stdout
            record["stderr"] = self.stderr
        return record

    def to_row(self) -> dict[str, Any]:
        """The journal's record of the job: to_record's, without the fields at their defaults
        (from_record gives them back), so a row that a job rewrites three or four times in its
        life is ~300 bytes to encode and write, not ~900 (issue 13). `id`, `argv` and
        `submitted` are always there; the output goes in columns of its own."""
        record: dict[str, Any] = {"id": self.id, "argv": list(self.argv), "submitted": self.submitted}
        for name, value in zip(_ROW_UNLESS_NONE, _row_unless_none(self)):
            if value is not None:
                record[name] = value
        for name, value in zip(_ROW_UNLESS_FALSE, _row_unless_false(self)):
            if value:
                record[name] = value
        if self.pending_timeout is not None:
            record["pending"] = self.pending_timeout
        if self.env:
            record["env"] = dict(self.env)
        if self.output_limit != DEFAULT_OUTPUT_LIMIT:
            record["output_limit"] = self.output_limit
        if self.state is not JobState.PENDING:
            record["state"] = self.state._value_
        if self.outcome is not None:
            record["outcome"] = self.outcome._value_
        if self.unknown_since is not None:
            record["unknown"] = True
        if self.attempts:
            record["attempts"] = [dict(a) for a in self.attempts]
        if self.mail:
            record.update(mail=True, inbox=list(self.inbox), outbox=list(self.outbox))
        return record

    def to_brief(self, *, output: bool = False) -> dict[str, Any]:
        """The short record of `subscribe -brief` and `job -brief`: what an
        owner follows its job by -- who and where it is, and once DONE how it ended, with the
        lines of its outbox (and with `output`, its output) -- and none of what it was submitted
        with, which the owner knows (its argv, environment, limits...): a third of the bytes
        to encode and decode, twice a job. `attempts`, `kill_requested` and `unknown_since`
        only when set."""
        record: dict[str, Any] = {
            "id": self.id, "submitted": self.submitted, "owner": self.owner, "task": self.task,
            "state": self.state._value_, "ran_on": self.ran_on, "pid": self.pid,
            "started": self.started, "harvested": self.harvested,
        }
        if self.attempts:
            record["attempts"] = [dict(a) for a in self.attempts]
        if self.kill_requested:
            record["kill_requested"] = True
        if self.unknown_since is not None:
            record.update(unknown=True, unknown_since=self.unknown_since)
        if self.state is JobState.DONE:
            record.update(
                outcome=self.outcome._value_ if self.outcome else None, status=self.status,
                signal=self.signal, ended=self.ended, elapsed=self.elapsed, reason=self.reason,
                stdout_bytes=self.stdout_bytes, stderr_bytes=self.stderr_bytes,
                stdout_truncated=self.stdout_truncated, stderr_truncated=self.stderr_truncated,
                spooled=self.spooled)
            if self.mail:
                record["outbox"] = list(self.outbox)
            if output:
                record["stdout"] = self.stdout
                record["stderr"] = self.stderr
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Job":
        job = cls(id=int(record["id"]), argv=tuple(record["argv"]),
                  submitted=float(record["submitted"]))
        for name in ("host", "timeout", "cwd", "owner", "task", "status", "signal", "ran_on",
                     "pid", "started", "ended", "elapsed", "harvested", "avoid", "queued",
                     "unknown_since", "batch_id", "not_before"):
            setattr(job, name, record.get(name))
        job.required = bool(record.get("required", False))
        job.pending_timeout = record.get("pending")
        job.priority = int(record.get("priority", 0))
        job.env = dict(record.get("env") or {})
        job.output_limit = int(record.get("output_limit", DEFAULT_OUTPUT_LIMIT))
        job.state = JobState(record.get("state", "PENDING"))
        job.outcome = Outcome(record["outcome"]) if record.get("outcome") else None
        job.reason = record.get("reason") or ""
        job.stdout = record.get("stdout") or ""
        job.stderr = record.get("stderr") or ""
        for name in ("stdout_bytes", "stderr_bytes"):
            setattr(job, name, int(record.get(name) or 0))
        for name in ("stdout_truncated", "stderr_truncated", "kill_requested",
                     "delete_requested", "spool", "spooled", "mail", "noskew"):
            setattr(job, name, bool(record.get(name)))
        job.inbox = tuple(str(line) for line in record.get("inbox") or ())
        job.outbox = tuple(str(line) for line in record.get("outbox") or ())
        job.retry = int(record.get("retry") or 0)
        job.retries_left = int(record.get("retries_left") or 0)
        job.attempts = tuple(dict(a) for a in record.get("attempts") or ())
        return job



#: A retained job's fields that the other jobs of its task mostly share (its `_shared` tuple,
#: one for many jobs), then those that are mostly at their defaults (its `_own`, the shared
#: _OWN_DEFAULTS when they all are); the others are its slots, or constant (`state`...).
_SHARED = ("argv", "host", "required", "timeout", "pending_timeout", "priority", "cwd", "owner",
           "task", "output_limit", "spool", "spooled", "mail", "inbox", "outcome", "status",
           "signal", "ran_on", "reason", "kill_requested", "retry", "retries_left", "noskew")
_OWN = ("stdout", "stderr", "stdout_bytes", "stderr_bytes", "stdout_truncated", "stderr_truncated",
        "outbox", "attempts", "avoid", "queued", "batch_id", "not_before")
_OWN_DEFAULTS = ("", "", 0, 0, False, False, (), (), None, None, None, None)
_shared_of = operator.attrgetter(*_SHARED)
_own_of = operator.attrgetter(*_OWN)
#: Shared tuples a Sharing's table holds at most: then it starts afresh.
SHARED_MAX = 4096
#: A retained job's own tuple is shared only when its output is at most this long (hashing a
#: long output to find its twin would cost more than it saves).
SHARED_OUTPUT = 4096


class Sharing:
    """What retained jobs share, one of each (RetainedJob.of): a table of the tuples shared,
    started afresh past SHARED_MAX entries, and before it the last common tuple shared (a
    standing task's jobs are harvested one after another: an equality test, no hashing of
    fresh strings); the environment's values are shared with the last job's only (sched's
    differ in every job)."""

    __slots__ = ("table", "last", "last_env")

    def __init__(self) -> None:
        self.table: dict[Any, Any] = {}
        self.last: tuple[Any, ...] = ()
        self.last_env: Any = ()

    def common(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if values != self.last:
            self.last = self.one(values)
        return self.last

    def one(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(self.table) >= SHARED_MAX:
            self.table.clear()
        return self.table.setdefault(values, values)

    def env(self, values: Any) -> Any:
        if values != self.last_env:
            self.last_env = values
        return self.last_env


class RetainedJob:
    """A finished job its owner has harvested, as pcontrol keeps it for the retention: the same
    fields as its Job (read-only; `env` a fresh dict each time) and the same records (made by
    the Job it rebuilds, as_job), in a quarter of the memory. A standing task's jobs differ in
    their times, pid and environment values only: what they share (argv, environment names,
    owner, task, host, outcome...) is one tuple for all of them, what is mostly at its default
    (output, outbox, attempts...) one shared tuple until it is not (Sharing finds them), the
    environment's values a tuple, or the one value alone, and the numbers are packed (_pack).
    Made by the harvest and by the load of a harvested job; nothing changes a harvested job
    but its forgetting."""

    __slots__ = ("id", "harvested", "_numbers", "_shared", "_own", "_env")

    state = JobState.DONE
    unknown_since = None
    delete_requested = False

    id: int
    harvested: float

    @staticmethod
    def keeps(job: Job) -> bool:
        """Whether `job` is one a RetainedJob keeps exactly: DONE, harvested, no report awaited."""
        return (job.state is JobState.DONE and job.harvested is not None and job.unknown_since is None
                and not job.delete_requested)

    @classmethod
    def of(cls, job: Job, sharing: Sharing) -> "RetainedJob":
        """The retained form of a harvested job (RetainedJob.keeps), its shared parts found
        by `sharing`, which the caller keeps for all its jobs. The types of the two time limits
        are in the common tuple: 5 and 5.0 are equal, but not the same in a record."""
        retained = cls.__new__(cls)
        retained.id, retained.harvested = job.id, job.harvested
        retained._numbers = _pack(job)
        env = job.env
        retained._shared = sharing.common(
            _shared_of(job) + (tuple(env), type(job.timeout), type(job.pending_timeout)))
        values = tuple(env.values())
        retained._env = sharing.env(values[0] if len(values) == 1 else values)
        own = _own_of(job)
        if own == _OWN_DEFAULTS:
            own = _OWN_DEFAULTS
        elif not job.attempts and len(job.stdout) + len(job.stderr) <= SHARED_OUTPUT:
            own = sharing.one(own)     # (the attempts' dicts do not hash)
        retained._own = own
        return retained

    @property
    def submitted(self) -> float:
        return self._number(0)   # type: ignore[return-value]

    @property
    def started(self) -> float | None:
        return self._number(1)   # type: ignore[return-value]

    @property
    def ended(self) -> float | None:
        return self._number(2)   # type: ignore[return-value]

    @property
    def elapsed(self) -> float | None:
        return self._number(3)   # type: ignore[return-value]

    @property
    def pid(self) -> int | None:
        return self._number(4)   # type: ignore[return-value]

    def _number(self, index: int) -> float | int | None:
        return _unpack(self._numbers)[index]

    @property
    def env(self) -> dict[str, str]:
        keys = self._shared[len(_SHARED)]
        return {keys[0]: self._env} if type(self._env) is str else dict(zip(keys, self._env))

    def as_job(self) -> Job:
        """The Job it was (a copy: changing it changes nothing here). Its records are made
        from it: ~2 us to rebuild, where reading the fields one property at a time took 5."""
        return Job(*_in_job_order(self._shared + self._own + _unpack(self._numbers)
                                  + (self.id, self.harvested, self.env, JobState.DONE, None, False)))

    def to_record(self, *, output: bool = False) -> dict[str, Any]:
        return self.as_job().to_record(output=output)

    def to_row(self) -> dict[str, Any]:
        return self.as_job().to_row()

    def to_brief(self, *, output: bool = False) -> dict[str, Any]:
        return self.as_job().to_brief(output=output)

    @property
    def agent_word(self) -> str:
        return self.as_job().agent_word

    @property
    def pending_deadline(self) -> float | None:
        return self.as_job().pending_deadline

    def __repr__(self) -> str:
        return f"RetainedJob(id={self.id}, owner={self.owner!r}, task={self.task!r}, outcome={self.outcome})"


#: A retained job's submitted, started, ended, elapsed and pid, packed (40 bytes, where the five
#: objects took 124), None as NaN (the times) or the least int64 (the pid): _pack.
_NUMBERS = struct.Struct("=4dq")
_NO_PID = -2 ** 63
_numbers_of = operator.attrgetter("submitted", "started", "ended", "elapsed", "pid")
_NAN = float("nan")


def _pack(job: Job) -> bytes | tuple[Any, ...]:
    """The job's numbers packed, or as they are when packing would not give them back the same
    (an int time, a NaN one, a pid out of range: never from pcontrol)."""
    submitted, started, ended, elapsed, pid = times = _numbers_of(job)
    for value in times[:4]:
        if value is not None and (type(value) is not float or value != value):
            return times
    if pid is not None and (type(pid) is not int or not -2 ** 63 < pid < 2 ** 63):
        return times
    return _NUMBERS.pack(submitted, _NAN if started is None else started, _NAN if ended is None else ended,
                         _NAN if elapsed is None else elapsed, _NO_PID if pid is None else pid)


def _unpack(numbers: bytes | tuple[Any, ...]) -> tuple[Any, ...]:
    """The job's numbers as _pack was given them (NaN and the least int64 back to None)."""
    if type(numbers) is tuple:
        return numbers
    submitted, started, ended, elapsed, pid = _NUMBERS.unpack(numbers)
    return (submitted if submitted == submitted else None, started if started == started else None,
            ended if ended == ended else None, elapsed if elapsed == elapsed else None,
            None if pid == _NO_PID else pid)


#: as_job's parts (the common fields, the own ones, the numbers, the rest) in Job's order.
_PARTS = (*_SHARED, "(env names)", "(timeout type)", "(pending type)", *_OWN,
          "submitted", "started", "ended", "elapsed", "pid",
          "id", "harvested", "env", "state", "unknown_since", "delete_requested")
_in_job_order = operator.itemgetter(*(_PARTS.index(name) for name in Job.__dataclass_fields__))


def _field(where: operator.attrgetter, index: int) -> property:
    return property(lambda job: where(job)[index])


for _index, _name in enumerate(_SHARED):
    setattr(RetainedJob, _name, _field(operator.attrgetter("_shared"), _index))
for _index, _name in enumerate(_OWN):
    setattr(RetainedJob, _name, _field(operator.attrgetter("_own"), _index))


@dataclass
class Host:
    name: str
    slots: int | None = None          # configured; None: whatever the agent reports
    connect: str | None = None        # the exact command, or None for the default
    address: str | None = None        # where the default command connects (None: the name)
    port: int | None = None           # and the ssh port there (None: ssh's own)
    slurm: dict[str, Any] | None = None   # a Slurm cluster: its SlurmOptions record
    pull: bool = False                # a probe that checks in (pull.py); pcontrol never connects
    enabled: bool = True              # False after `host off`
    state: HostState = HostState.CONNECTING
    reason: str = ""                  # why it went DOWN last
    since: float = 0.0                # wall clock of the last state change
    added: float = 0.0
    agent_slots: int = 0              # slots in use for dispatch, from the handshake
    running: set[int] = field(default_factory=set)
    failures: int = 0                 # consecutive failed connects / losses
    retry_at: float | None = None     # wall clock of the next automatic retry
    agent: dict[str, Any] = field(default_factory=dict)   # hello: pid, version, clock skew
    last_pong: float | None = None
    held: set[int] = field(default_factory=set)   # jobs of a lost agent, awaiting its report
    undropped: set[str] = field(default_factory=set)
    """Agent words of forgotten jobs whose spooled output its agent was not there to drop (no
    connection: pcontrol just started, the host DOWN); the drops go out when it connects."""
    flaps: int = 0                    # times it went DOWN soon after coming up
    replacing: bool = False           # its agent is of another build: no new jobs, and
                                      # pcontrol's own agent replaces it once it runs none
    history: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=20))   # recent state changes

    @property
    def target(self) -> str:
        """Where its agent is started: the address, else the name."""
        return self.address or self.name

    @property
    def local(self) -> bool:
        """Its agent is a local pclient (the default command for localhost, no port)."""
        return self.target == "localhost" and self.port is None

    @property
    def free_slots(self) -> int:
        if self.state not in (HostState.IDLE, HostState.BUSY) or self.replacing:
            return 0
        return max(0, self.agent_slots - len(self.running))

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name, "state": self.state._value_, "slots": self.slots,
            "agent_slots": self.agent_slots, "connect": self.connect, "slurm": self.slurm,
            "address": self.address, "port": self.port,
            "enabled": self.enabled, "reason": self.reason, "since": self.since,
            "added": self.added, "running": sorted(self.running),
            "failures": self.failures, "retry_at": self.retry_at,
            "agent": dict(self.agent), "last_pong": self.last_pong,
            "held": sorted(self.held), "flaps": self.flaps, "history": list(self.history),
            "replacing": self.replacing, "pull": self.pull,
        }
