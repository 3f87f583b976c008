"""The agent protocol (pcontrol <-> pclient), version 2 (speaks with version 1 peers).

Line-delimited JSON: the controller writes to the agent's stdin, the agent
writes to its stdout, one JSON object per line with a "type" tag.  Each
message type is a frozen dataclass below; `encode` turns one into a line,
`decode` turns a line back into one or raises `ProtocolError`.  Unknown extra
fields are ignored so that newer peers can add fields.

    agent -> controller      Hello  Started  Ended  Pong  Error  | Resumed  Lost  Chunk
    controller -> agent      Run    Kill     Ping   Bye          | Auth     Ack   Fetch  Drop

Version 2 adds the messages right of the bar; a controller sends them only
to an agent whose hello says version >= 2, and an agent that never gets an
`auth` behaves as version 1 (it ends its jobs when its controller goes).
After `auth` the agent keeps each `ended` until the controller `ack`s it,
and survives a lost controller for a lease (see pclient.lease): a successor
agent takes its jobs over through a Unix socket on the same host, speaking
this same protocol plus the handshake pair

    survivor -> successor    Challenge        successor -> survivor    Takeover

Synchronized starts (pclient.syncstart) add two more pairs, sent only for a sync run (an
older agent answers them with an `error`, which makes its targets fail, never the agent):

    controller -> agent      ClockProbe  Prepare  Go
    agent -> controller      ClockReply  Ready    Launched

`clock`/`clock_reply` carry NTP's four timestamps (pclient.clockmath); `prepare` forks a
job held at a gate, `ready` says it waits there, `go` names the instant to pass the gate,
`launched` says when the program really started; its end is an ordinary `ended`.

The spool sweep (versioned on its own: SWEEP_VERSION, said in the agent's `hello` as `sweep`;
a controller sends `sweep` only to an agent that says 1 or more, and an agent sweeps nothing
unasked, so either side may be the older):

    controller -> agent      Sweep            agent -> controller      Spooled

`spooled` lists the spooled jobs the agent cannot account for; the controller `drop`s those
it does not know either (pclient.spool).

Later additions are optional fields, so peers of either age still speak:
`run` may ask for a `mailbox` (with the `inbox` lines) and `ended` then carries the
job's `outbox` lines (pclient.mailbox, for sched's switchboard),
`hello` may carry the agent's `build` (the digest of its code, pclient.build:
pcontrol replaces or flags an agent of another build),
`auth` may carry the controller's heartbeat (the agent then gives up on a
controller silent for too long, as on a closed connection), and `ping` may
name the jobs the controller holds for the host (the agent then keeps
looking for survivors that run them, and answers with a second `resumed`
when it finds some, or `lost` when no agent on the host can have them).

`encode` always writes pure ASCII (non-ASCII is escaped by JSON), so a line
passes unmangled through pipes, ssh and pseudo-terminals in raw mode.
Standard library only: this module also runs on the remote hosts.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import operator
import threading
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar, Dict, Tuple, Union

from . import jsontext

__all__ = [
    "checker_for",
    "describe_json",
    "prepare",
    "reject_json_constant",
    "AGENT_VERSION",
    "DEFAULT_OUTPUT_LIMIT",
    "MAX_LINE",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "MIN_PROTOCOL_VERSION",
    "SWEEP_VERSION",
    "Ack",
    "Auth",
    "Bye",
    "Challenge",
    "Chunk",
    "ClockProbe",
    "ClockReply",
    "Drop",
    "Ended",
    "Error",
    "Fetch",
    "Go",
    "Hello",
    "Kill",
    "Launched",
    "Lost",
    "Message",
    "Outcome",
    "Ping",
    "Pong",
    "Prepare",
    "ProtocolError",
    "Ready",
    "Resumed",
    "Run",
    "Spooled",
    "Started",
    "Sweep",
    "Takeover",
    "decode",
    "encode",
]

AGENT_VERSION = "0.3.0"
"""The version of pclient (the agent reports it in its hello)."""
SWEEP_VERSION = 1
"""The spool sweep this side speaks (`sweep`/`spooled`; the agent's hello says it)."""
PROTOCOL_VERSION = 2
MIN_PROTOCOL_VERSION = 1
"""The oldest peer version this side still speaks with."""
MAX_LINE = 16 * 1024 * 1024
"""Longest accepted line in bytes, not counting its newline."""
DEFAULT_OUTPUT_LIMIT = 1024 * 1024
"""Bytes of stdout (and of stderr) kept per job unless the run says otherwise."""
EXCERPT_CHARS = 200
"""How much of an offending line an error quotes back."""


class ProtocolError(ValueError):
    """A line that is not a valid message.

    `reason` says what is wrong, `job` is the job id the line named (if it
    named one, so the error can be tied to a job), `excerpt` quotes the start
    of the line.
    """

    def __init__(self, reason: str, *, job: str | None = None, excerpt: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.job = job
        self.excerpt = excerpt


class Outcome(str, enum.Enum):
    """How a job ended (a plain string on the wire)."""

    EXIT = "exit"
    """The program ran and exited by itself with a status (or could not start: 126/127)."""
    CRASH = "crash"
    """The program was terminated by a signal nobody here sent."""
    TIMEOUT = "timeout"
    """The job ran past its timeout and was killed."""
    KILLED = "killed"
    """The job was killed on request (a kill message, bye, or the agent shutting down)."""
    PENDING = "pending"
    """The job never started: it waited in a batch system's queue past its pending time
    (only pcontrol's Slurm driver reports it; agents start jobs at once)."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Message:
    """Base of all messages; `TYPE` is the wire tag of each subclass.

    Each subclass (marked @message) becomes a frozen dataclass at its first use: its first
    instance (Message.__init__ makes it, then the class has its own), its first decode, or its
    look-up in MESSAGE_TYPES (so dataclasses.fields of what MESSAGE_TYPES gives). Making the 27 dataclasses costs more than the rest of this
    module (their methods are compiled one by one); a process uses a few (start-up, issue 13).
    Until then a class has only Message's (empty) dataclass fields: look a class up in
    MESSAGE_TYPES (or make one) before asking dataclasses about it."""

    TYPE: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # reached only before the class is made (making it gives it its own __init__), and
        # for Message itself, which has no fields
        cls = type(self)
        if cls is Message:
            if args or kwargs:
                raise TypeError("Message() takes no arguments")
            return
        _make(cls).__init__(self, *args, **kwargs)


_MADE: set[type] = {Message}
"""The message classes made dataclasses so far."""
_MAKING = threading.Lock()


def message(cls: type) -> type:
    """Mark a message class (a subclass of Message); it is made a frozen dataclass when first used."""
    return cls


def _make(cls: type) -> type:
    """`cls` as a frozen dataclass (made now if it is not yet)."""
    if cls in _MADE:
        return cls
    with _MAKING:
        if cls not in _MADE:
            for base in reversed(cls.__mro__[1:]):
                if issubclass(base, Message) and base not in _MADE:
                    _make_one(base)
            _make_one(cls)
    return cls


def _make_one(cls: type) -> None:
    dataclass(frozen=True)(cls)
    _MADE.add(cls)


# -- agent -> controller ------------------------------------------------------


@message
class Hello(Message):
    """The first line an agent writes: the handshake."""

    TYPE: ClassVar[str] = "hello"
    version: int
    host: str
    pid: int
    clock: float
    slots: int
    agent: str
    build: str = ""
    """Digest of the agent's code (pclient.build); "" from agents older than the field."""
    sweep: int = 0
    """The version of the spool sweep the agent answers (`sweep`, SWEEP_VERSION); 0 from
    agents older than it: the controller sends them none."""


@message
class Started(Message):
    """A job's process is running.  `pid` is None when it could not be
    started at all; an `Ended` with status 127/126 follows at once."""

    TYPE: ClassVar[str] = "started"
    job: str
    pid: Union[int, None]
    clock: float
    batch_id: Union[str, None] = None
    """The batch system's id for the job (a Slurm host: the job was submitted, pid None)."""


@message
class Ended(Message):
    """A job is over; see `Outcome`.  `status` is set only for EXIT, `signal`
    for CRASH (and, informationally, for TIMEOUT / KILLED)."""

    TYPE: ClassVar[str] = "ended"
    job: str
    outcome: Outcome
    status: Union[int, None]
    signal: Union[int, None]
    elapsed: float
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    reason: Union[str, None]
    spooled: bool = False
    """The agent keeps the whole of both streams in its spool (the run asked for `spool`):
    `fetch` reads them, `drop` removes them."""
    outbox: Tuple[str, ...] = ()
    """The lines the job wrote to $PSCHED_OUTBOX (the run asked for `outbox`; pclient.mailbox)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outbox", tuple(self.outbox))


@message
class Chunk(Message):
    """The answer to `Fetch`: `data` is base64 of the bytes of `stream` from `offset` (at most
    the size asked); `eof` says nothing follows them.  `error` (data empty) when the spool
    cannot be read."""

    TYPE: ClassVar[str] = "chunk"
    job: str
    stream: str
    offset: int
    data: str
    eof: bool
    error: Union[str, None] = None


@message
class Spooled(Message):
    """The answer to `Sweep`: `jobs` have files in the controller's part of the spool that the
    agent cannot account for (none running, no outcome unacknowledged), untouched for the
    sweep's age; the controller drops those it does not know either.  `files` and `bytes`:
    what the agent removed by itself (dead agents' unfinished files, abandoned `parts` of
    other controllers).  `shared`: another live agent of the controller's key is on the host
    (one that may hold jobs of its own), so no job was listed this time."""

    TYPE: ClassVar[str] = "spooled"
    seq: int
    jobs: Tuple[str, ...] = ()
    files: int = 0
    bytes: int = 0
    parts: Tuple[str, ...] = ()
    shared: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "jobs", tuple(self.jobs))
        object.__setattr__(self, "parts", tuple(self.parts))


@message
class Pong(Message):
    """The answer to `Ping`; `running` is the number of jobs running now."""

    TYPE: ClassVar[str] = "pong"
    seq: int
    clock: float
    running: int


@message
class Error(Message):
    """The agent rejected a line (malformed, unknown, or not acceptable now)."""

    TYPE: ClassVar[str] = "error"
    reason: str
    job: Union[str, None] = None
    excerpt: str = ""


# -- controller -> agent ------------------------------------------------------


@message
class Run(Message):
    """Run `argv` (no shell) as job `job`; `env` is added to the agent's environment."""

    TYPE: ClassVar[str] = "run"
    job: str
    argv: Tuple[str, ...]
    cwd: Union[str, None] = None
    env: Dict[str, str] = field(default_factory=dict, hash=False)
    timeout: Union[float, None] = None
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    pending: Union[float, None] = None
    """Seconds the job may still wait before it starts (its -pending time left): for a batch
    system's queue; an agent starts jobs at once and ignores it."""
    spool: bool = False
    """Keep the whole of stdout and stderr, every byte, in the agent's spool for `fetch`
    (the `ended` then says `spooled`); an older agent ignores it."""
    mailbox: bool = False
    """Give the job a mailbox (pclient.mailbox): $PSCHED_INBOX holding `inbox`, and
    $PSCHED_OUTBOX, whose lines come back in the `ended`; an older agent ignores both."""
    inbox: Tuple[str, ...] = ()
    not_before: Union[float, None] = None
    """The job's planned start (pcontrol's wall clock): pcontrol sends a pushed agent a job only
    once it is due, so an agent ignores it; a pull probe is told it as the time of its run."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", dict(self.env or {}))
        object.__setattr__(self, "inbox", tuple(self.inbox))
        if not self.job:
            raise ValueError("run: job id must not be empty")
        if not self.argv:
            raise ValueError("run: argv must not be empty")
        if self.timeout is not None and not (self.timeout >= 0 and math.isfinite(self.timeout)):
            raise ValueError(f"run: timeout must be a finite number >= 0, got {self.timeout!r}")
        if self.output_limit < 0:
            raise ValueError(f"run: output_limit must be >= 0, got {self.output_limit!r}")


@message
class Kill(Message):
    """Kill job `job` (SIGTERM to its group, SIGKILL after a grace)."""

    TYPE: ClassVar[str] = "kill"
    job: str


@message
class Fetch(Message):
    """Read up to `size` bytes of a spooled job's `stream` ("stdout" or "stderr") from
    `offset`; answered by `Chunk` (with its `error` for a stream, offset or job it cannot read)."""

    TYPE: ClassVar[str] = "fetch"
    job: str
    stream: str
    offset: int
    size: int


@message
class Drop(Message):
    """The controller has all it wants of a spooled job's output: remove it."""

    TYPE: ClassVar[str] = "drop"
    job: str


@message
class Sweep(Message):
    """Sweep the spool (sent only to an agent whose hello says `sweep` >= 1): answered by
    `Spooled`.  `age`: seconds a file must have been left untouched to be swept; `abandon`:
    seconds after which another controller's part that no live agent holds is removed whole
    (None: never touch other controllers' parts)."""

    TYPE: ClassVar[str] = "sweep"
    seq: int
    age: float
    abandon: Union[float, None] = None

    def __post_init__(self) -> None:
        if not (self.age >= 0 and math.isfinite(self.age)):
            raise ValueError(f"sweep: age must be a finite number >= 0, got {self.age!r}")
        if self.abandon is not None and not (self.abandon >= 0 and math.isfinite(self.abandon)):
            raise ValueError(f"sweep: abandon must be a finite number >= 0, got {self.abandon!r}")


@message
class Ping(Message):
    """Liveness check; answered by `Pong` with the same `seq`.

    `held` (version 2, after `resumed`) names the jobs the controller holds for
    this host: they were out on it when contact was lost, and no agent has
    reported them since.  An agent that does not know one of them looks for
    survivors again (their agent may have learnt only now that it was left),
    and reports `lost` those that no agent left on the host can have."""

    TYPE: ClassVar[str] = "ping"
    seq: int
    held: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "held", tuple(self.held))


@message
class Bye(Message):
    """Kill all jobs, report them ended, exit 0 (EOF on stdin means the same)."""

    TYPE: ClassVar[str] = "bye"


# -- version 2: survival ------------------------------------------------------


@message
class Auth(Message):
    """Sent by the controller right after the hello.  `token` is derived from
    the controller's secret (never the secret itself): a successor agent must
    prove it holds the same token to take this agent's jobs over.  `name` is
    the host's name at the controller (survivors are found by token and name);
    `lease` is how long to keep jobs without a controller (None: the agent's
    own --lease).  `heartbeat` (seconds between the controller's pings) and
    `missed` (pings missed before the controller calls a host DOWN) go
    together: with them the agent keeps a watchdog, and a controller silent
    for longer than heartbeat x missed (plus a slack) is lost, as if the
    connection had ended; without them (an older controller) there is no
    watchdog.  The agent answers with `Resumed` once it has looked for
    survivors of a previous controller."""

    TYPE: ClassVar[str] = "auth"
    token: str
    name: str
    lease: Union[float, None] = None
    heartbeat: Union[float, None] = None
    missed: Union[int, None] = None
    fence: Union[int, None] = None
    """The fencing token of the controller's leader in a high-availability pool (pclient.fencing):
    the agent refuses it when a higher one has taken over the host. None: no pool."""

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("auth: token must not be empty")
        if self.fence is not None and (isinstance(self.fence, bool) or not isinstance(self.fence, int) or self.fence < 0):
            raise ValueError(f"auth: fence must be an integer >= 0, got {self.fence!r}")
        if self.lease is not None and not (self.lease >= 0 and math.isfinite(self.lease)):
            raise ValueError(f"auth: lease must be a finite number >= 0, got {self.lease!r}")
        if (self.heartbeat is None) != (self.missed is None):
            raise ValueError("auth: heartbeat and missed go together (both or neither)")
        if self.heartbeat is not None and not (self.heartbeat > 0 and math.isfinite(self.heartbeat)):
            raise ValueError(f"auth: heartbeat must be a finite number > 0, got {self.heartbeat!r}")
        if self.missed is not None and self.missed < 1:
            raise ValueError(f"auth: missed must be at least 1, got {self.missed!r}")

    @property
    def silence_limit(self) -> Union[float, None]:
        """Seconds of silence after which the controller calls this host DOWN
        (None: it did not say, so the agent keeps no watchdog)."""
        if self.heartbeat is None or self.missed is None:
            return None
        return self.heartbeat * self.missed


@message
class Ack(Message):
    """The controller has stored the outcomes of these jobs; the agent may forget them."""

    TYPE: ClassVar[str] = "ack"
    jobs: Tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "jobs", tuple(self.jobs))


@message
class Resumed(Message):
    """The answer to `Auth` (and a survivor's report to its successor): the jobs
    this agent runs now and the finished ones whose `ended` follows (taken over
    from agents of a previous controller, or not yet acknowledged).

    Sent again later, it reports survivors found late (see `Ping.held`): then
    it names only the jobs of those `survivors`, now taken over.  `looks_again`:
    this agent does look again when pings name held jobs (an older agent's
    report lacks it, and the controller then expects nothing later)."""

    TYPE: ClassVar[str] = "resumed"
    running: Tuple[str, ...]
    finished: Tuple[str, ...]
    survivors: int = 0
    looks_again: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "running", tuple(self.running))
        object.__setattr__(self, "finished", tuple(self.finished))


@message
class Lost(Message):
    """These jobs ended without an outcome (the agent running them died)."""

    TYPE: ClassVar[str] = "lost"
    jobs: Tuple[str, ...]
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "jobs", tuple(self.jobs))


@message
class Challenge(Message):
    """A surviving agent's first line to whoever connects to its socket."""

    TYPE: ClassVar[str] = "challenge"
    nonce: str
    pid: int


@message
class Takeover(Message):
    """A successor's answer to `Challenge`: `proof` is HMAC-SHA256(token, nonce) in hex."""

    TYPE: ClassVar[str] = "takeover"
    proof: str
    pid: int
    fence: Union[int, None] = None
    """The successor's fencing token (its controller's `auth`): a survivor refuses a lower one."""


# -- synchronized starts ------------------------------------------------------------


@message
class ClockProbe(Message):
    """Controller -> agent: answer at once with a `ClockReply`; `sent` is the controller's
    clock when it sent this (t0 of pclient.clockmath)."""

    TYPE: ClassVar[str] = "clock"
    seq: int
    sent: float


@message
class ClockReply(Message):
    """Agent -> controller: `sent` echoed (t0), and the agent's clock when the probe was
    read (`received`, t1) and when this reply was written (`replied`, t2)."""

    TYPE: ClassVar[str] = "clock_reply"
    seq: int
    sent: float
    received: float
    replied: float


@message
class Prepare(Message):
    """Controller -> agent: fork job `job` now but hold it at a gate before its program
    starts (answered by `Ready`, or by `ended` if it could not be made ready); `Go` lets
    it through.  Its run has no timeout here: the controller times the run itself."""

    TYPE: ClassVar[str] = "prepare"
    job: str
    argv: Tuple[str, ...]
    cwd: Union[str, None] = None
    env: Dict[str, str] = field(default_factory=dict, hash=False)
    output_limit: int = DEFAULT_OUTPUT_LIMIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", dict(self.env or {}))
        if not self.job:
            raise ValueError("prepare: job id must not be empty")
        if not self.argv:
            raise ValueError("prepare: argv must not be empty")
        if self.output_limit < 0:
            raise ValueError(f"prepare: output_limit must be >= 0, got {self.output_limit!r}")


@message
class Ready(Message):
    """Agent -> controller: job `job` was forked (pid `pid`, at `clock` by the agent's
    clock) and now waits at its gate."""

    TYPE: ClassVar[str] = "ready"
    job: str
    pid: int
    clock: float


@message
class Go(Message):
    """Controller -> agent: start these prepared jobs at the instant `at` of the
    controller's clock, that is at `at + offset` by the agent's own clock (`offset`: the
    agent's clock minus the controller's, as the controller measured it)."""

    TYPE: ClassVar[str] = "go"
    jobs: Tuple[str, ...]
    at: float
    offset: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "jobs", tuple(self.jobs))


@message
class Launched(Message):
    """Agent -> controller: job `job`'s program really started at `clock` (agent's clock);
    `late` is how far past its instant that was, by the agent's clock (0 if on time)."""

    TYPE: ClassVar[str] = "launched"
    job: str
    clock: float
    late: float = 0.0


@message
class Fence(Message):
    """Controller -> agent: the controller's scheduler now leads its pool under `token` (a
    higher fencing token than the one in `auth`): the agent takes it (and raises the host's
    floor), unless a higher one has taken the host over (then it answers an `error`)."""

    TYPE: ClassVar[str] = "fence"
    token: int

    def __post_init__(self) -> None:
        if isinstance(self.token, bool) or not isinstance(self.token, int) or self.token < 0:
            raise ValueError(f"fence: token must be an integer >= 0, got {self.token!r}")


class _MessageTypes(dict):
    """Wire tag -> message class, each made a dataclass as it is looked up (Message)."""

    def __getitem__(self, tag: str) -> type:
        return _make(super().__getitem__(tag))

    def get(self, tag: str, default: Any = None) -> Any:  # type: ignore[override]
        cls = super().get(tag)
        return default if cls is None else _make(cls)

    def values(self) -> Any:  # type: ignore[override]
        return [_make(cls) for cls in super().values()]

    def items(self) -> Any:  # type: ignore[override]
        return [(tag, _make(cls)) for tag, cls in super().items()]


MESSAGE_TYPES: dict[str, type[Message]] = _MessageTypes({
    cls.TYPE: cls for cls in (Hello, Started, Ended, Pong, Error, Run, Kill, Ping, Bye,
                              Auth, Ack, Resumed, Lost, Challenge, Takeover, Fetch, Chunk, Drop,
                              ClockProbe, ClockReply, Prepare, Ready, Go, Launched, Fence,
                              Sweep, Spooled)
})
"""Wire tag -> message class."""


# -- encoding -----------------------------------------------------------------


def encode(msg: Message) -> bytes:
    """One message as one ASCII line ending in a newline.

    Raises ProtocolError if the line would be longer than MAX_LINE.
    """
    names, values, enums = _field_getter(type(msg))
    obj: dict[str, Any] = {"type": msg.TYPE}
    obj.update(zip(names, values(msg)))
    for name in enums:
        value = obj[name]
        if isinstance(value, enum.Enum):
            obj[name] = value.value
    data = _encode(obj).encode("ascii")
    if len(data) > MAX_LINE:
        raise ProtocolError(
            f"{msg.TYPE} message is {len(data)} bytes, longer than MAX_LINE ({MAX_LINE})",
            job=getattr(msg, "job", None),
        )
    return data + b"\n"


_encode = jsontext.encoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
"""Made once: json.dumps with any option makes a new encoder for every call, and
JSONEncoder.encode a new C encoder (pclient.jsontext)."""


@functools.lru_cache(maxsize=None)
def _field_getter(cls: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]], tuple[str, ...]]:
    """A message type's field names, what reads all their values at once (a message is
    encoded four times a job: run, started, ended, and the ack that names it), and the names
    of those whose values are enum members (sent as their values)."""
    _make(cls)
    names = tuple(f.name for f in fields(cls))
    hints = typing.get_type_hints(cls)
    enums = tuple(name for name in names
                  if any(isinstance(t, type) and issubclass(t, enum.Enum)
                         for t in (hints[name], *typing.get_args(hints[name]))))
    if len(names) > 1:
        return names, operator.attrgetter(*names), enums
    return names, lambda msg: tuple(getattr(msg, name) for name in names), enums


# -- decoding -----------------------------------------------------------------

_Checker = Callable[[Any], Any]
"""Takes a JSON value, returns it converted (e.g. list -> tuple) or raises
TypeError with a description of what was expected."""


def describe_json(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _check_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _check_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def _check_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a finite number")
    try:
        number = float(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        raise TypeError("a finite number") from None
    if not math.isfinite(number):
        raise TypeError("a finite number")
    return number


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("a boolean")
    return value


def _check_outcome(value: Any) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        raise TypeError("one of " + ", ".join(repr(o.value) for o in Outcome)) from None


def _check_str_tuple(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError("a list of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"a list of strings (item {index} is {describe_json(item)})")
    return tuple(value)


def _check_str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError("an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise TypeError(f"an object of strings ({key!r} is {describe_json(item)})")
    return value


_SIMPLE_CHECKERS: dict[Any, _Checker] = {
    str: _check_str,
    int: _check_int,
    float: _check_float,
    bool: _check_bool,
    Outcome: _check_outcome,
    Tuple[str, ...]: _check_str_tuple,
    Dict[str, str]: _check_str_dict,
}


def checker_for(hint: Any) -> _Checker:
    """A checker for one field's type hint (the few shapes messages use): the one field checker
    of pclient's wire formats (pullwire.py uses it too)."""
    if hint in _SIMPLE_CHECKERS:
        return _SIMPLE_CHECKERS[hint]
    if typing.get_origin(hint) in (Union, getattr(types, "UnionType", Union)):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(inner) == 1:
            check = checker_for(inner[0])

            def check_optional(value: Any) -> Any:
                if value is None:
                    return None
                try:
                    return check(value)
                except TypeError as exc:
                    raise TypeError(f"{exc} or null") from None

            return check_optional
    raise TypeError(f"no wire checker for type hint {hint!r}")  # a bug in this module


_FieldSpec = Tuple[str, _Checker, bool, Tuple[type, ...]]  # name, checker, required, as-is types

_AS_IS: dict[Any, Tuple[type, ...]] = {str: (str,), int: (int,), bool: (bool,)}
"""The JSON types a field of each simple hint takes unchanged (its checker would return the
value as it is): decode skips the checker's call for them. Not float (inf: 1e999 parses)."""


def _as_is(hint: Any) -> Tuple[type, ...]:
    """The exact types a value of a field with this hint passes its checker unchanged as."""
    if hint in _AS_IS:
        return _AS_IS[hint]
    if typing.get_origin(hint) in (Union, getattr(types, "UnionType", Union)):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(inner) == 1:
            return _as_is(inner[0]) + (type(None),)
    return ()


def _field_specs(cls: type[Message]) -> list[_FieldSpec]:
    _make(cls)
    hints = typing.get_type_hints(cls)
    specs = []
    for f in fields(cls):
        required = f.default is MISSING and f.default_factory is MISSING
        specs.append((f.name, checker_for(hints[f.name]), required, _as_is(hints[f.name])))
    return specs


_FIELD_SPECS: dict[type[Message], list[_FieldSpec]] = {}
"""Each message type's fields as `decode` checks them, worked out at the type's first decode:
an agent and pcontrol start without reading the type hints of every message (start-up, issue 13)."""


def prepare(*types: type[Message]) -> None:
    """Make `types` now, with what encode and decode need of them, instead of at their first use:
    a peer that waits for its other side calls it for the messages of the coming exchange, so
    that making them (~1 ms of CPU each) is not in that exchange's latency (the handshake and
    first job of a cold script's local agent, issue 13)."""
    for cls in types:
        _field_getter(cls)
        if cls not in _FIELD_SPECS:
            _FIELD_SPECS[cls] = _field_specs(cls)


def reject_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


_DECODER = json.JSONDecoder(parse_constant=reject_json_constant)
"""Made once: json.loads with any option makes a new decoder for every call."""


def decode(line: bytes | str) -> Message:
    """Parse one line (with or without its newline) into a message.

    Raises ProtocolError for: a line over MAX_LINE, bytes that are not UTF-8,
    malformed JSON, a non-object, a missing or unknown type, a missing or
    ill-typed field, or a field value out of range.
    """
    if isinstance(line, (bytes, bytearray, memoryview)):
        raw = bytes(line).rstrip(b"\r\n")
        if len(raw) > MAX_LINE:
            raise ProtocolError(f"line of {len(raw)} bytes is longer than MAX_LINE ({MAX_LINE})",
                                excerpt=_excerpt(raw[:EXCERPT_CHARS].decode("utf-8", "replace")))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})",
                                excerpt=_excerpt(raw[:EXCERPT_CHARS].decode("utf-8", "replace"))) from None
    else:
        text = line.rstrip("\r\n")
        if len(text) > MAX_LINE:
            raise ProtocolError(f"line of {len(text)} characters is longer than MAX_LINE ({MAX_LINE})",
                                excerpt=_excerpt(text))
    excerpt = _excerpt(text)
    try:
        obj = _DECODER.decode(text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ProtocolError(f"malformed JSON: {exc}", excerpt=excerpt) from None
    except RecursionError:
        raise ProtocolError("malformed JSON: nested too deeply", excerpt=excerpt) from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {describe_json(obj)}", excerpt=excerpt)
    job = obj.get("job") if isinstance(obj.get("job"), str) and obj.get("job") else None
    kind = obj.get("type")
    if not isinstance(kind, str):
        what = "missing" if kind is None else f"{describe_json(kind)}, not a string"
        raise ProtocolError(f"message type is {what}", job=job, excerpt=excerpt)
    cls = dict.get(MESSAGE_TYPES, kind)  # made by _field_specs below, at its first decode
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {', '.join(MESSAGE_TYPES)}",
                            job=job, excerpt=excerpt)
    kwargs: dict[str, Any] = {}
    specs = _FIELD_SPECS.get(cls)
    if specs is None:
        specs = _FIELD_SPECS[cls] = _field_specs(cls)
    for name, check, required, as_is in specs:
        if name not in obj:
            if required:
                raise ProtocolError(f"{kind}: missing field {name!r}", job=job, excerpt=excerpt)
            continue
        value = obj[name]
        if type(value) in as_is:
            kwargs[name] = value
            continue
        try:
            kwargs[name] = check(value)
        except TypeError as exc:
            raise ProtocolError(f"{kind}: field {name!r} must be {exc}, got {describe_json(value)}",
                                job=job, excerpt=excerpt) from None
    try:
        return cls(**kwargs)
    except ValueError as exc:  # range checks in __post_init__
        raise ProtocolError(str(exc), job=job, excerpt=excerpt) from None
