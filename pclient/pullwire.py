"""The pull protocol: what a probe behind NAT and pcontrol's pull listener say to each other.

One short TCP connection per check-in, JSON lines, the probe speaking first:

    probe -> Hello(id, t0)                          only its id (and when it sent this, its clock)
    pcontrol -> Challenge(challenge, t1, t2)        fresh random bytes; when it got the hello and
                                                    sent this (pcontrol's clock)
    probe -> Proof(proof, t0, t3, report)           HMAC of the challenge under the probe's own key;
                                                    t3 = when the challenge arrived; the outcome of
                                                    the job it ran last, if not yet acknowledged
    pcontrol -> Answer(ok, next, job, acked, error) the time of its next run and the job to run then
                                                    (or none: just come back then); `acked`: the
                                                    reports now safely taken (the probe forgets them)

The four timestamps are NTP's (pclient.clockmath): pcontrol measures the probe's clock offset at
every check-in. Fields are checked by pclient.protocol's checkers (finite numbers only, as the
agent protocol). The proof binds the probe's id (PROOF_LABEL + id + challenge), so a key proves
only its own probe: a probe never sees, runs or reports another probe's jobs. Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar, Dict, List, Tuple, Type, TypeVar, Union

from .protocol import checker_for, describe_json, reject_json_constant

__all__ = ["PULL_VERSION", "PullError", "Hello", "Challenge", "Proof", "Report", "PullJob", "Answer",
           "encode", "decode", "pull_proof", "MAX_PULL_LINE", "RUN_NEAR"]

PULL_VERSION = 1
PROOF_LABEL = b"pcontrol pull probe v1\0"
MAX_PULL_LINE = 4 * 1024 * 1024
"""A report carries the job's output (cut to its output limit): lines stay under this."""
RUN_NEAR = 2.0
"""A probe given a job to run more than this many seconds from now checks in again a second
before its run time (pcontrol may have withdrawn the job meanwhile: it then drops it); within
this, it runs the job at its time without checking in, and pcontrol counts it as started."""


class PullError(ValueError):
    """A line that is not the message expected; the text says what is wrong."""


def pull_proof(key: bytes, probe_id: str, challenge: bytes) -> str:
    """HMAC-SHA256 (hex) proving the holder of `key` is `probe_id`, for this challenge."""
    return hmac.new(key, PROOF_LABEL + probe_id.encode("utf-8") + b"\0" + challenge, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Msg:
    TYPE: ClassVar[str] = ""


@dataclass(frozen=True)
class Hello(_Msg):
    TYPE: ClassVar[str] = "pull_hello"
    id: str
    t0: float


@dataclass(frozen=True)
class Challenge(_Msg):
    TYPE: ClassVar[str] = "pull_challenge"
    challenge: str
    t1: float
    t2: float


@dataclass(frozen=True)
class Report(_Msg):
    """How the job the probe ran last ended (pclient.protocol.Outcome values)."""

    TYPE: ClassVar[str] = "pull_report"
    job: str
    outcome: str
    status: Union[int, None]
    signal: Union[int, None]
    elapsed: float
    stdout: str = ""
    stderr: str = ""
    reason: Union[str, None] = None
    stdout_bytes: Union[int, None] = None
    """The whole stream's size (`stdout` is its head, cut to the job's output limit); None: len(stdout)."""
    stderr_bytes: Union[int, None] = None


@dataclass(frozen=True)
class Proof(_Msg):
    TYPE: ClassVar[str] = "pull_proof"
    proof: str
    t0: float
    t3: float
    report: Union[Report, None] = None


@dataclass(frozen=True)
class PullJob(_Msg):
    TYPE: ClassVar[str] = "pull_job"
    job: str
    argv: Tuple[str, ...]
    timeout: Union[float, None] = None
    cwd: Union[str, None] = None
    env: Dict[str, str] = field(default_factory=dict, hash=False)
    output_limit: int = 1 << 20


@dataclass(frozen=True)
class Answer(_Msg):
    TYPE: ClassVar[str] = "pull_answer"
    ok: bool
    next: Union[float, None] = None
    job: Union[PullJob, None] = None
    acked: Tuple[str, ...] = ()
    error: Union[str, None] = None


M = TypeVar("M", bound=_Msg)


def _plain(msg: _Msg) -> Dict[str, Any]:
    obj: Dict[str, Any] = {"type": msg.TYPE, "v": PULL_VERSION}
    for f in fields(msg):
        value = getattr(msg, f.name)
        obj[f.name] = _plain(value) if isinstance(value, _Msg) else (list(value) if isinstance(value, tuple) else value)
    return obj


def encode(msg: _Msg) -> bytes:
    data = json.dumps(_plain(msg), ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
    if len(data) > MAX_PULL_LINE:
        raise PullError(f"{msg.TYPE} is {len(data)} bytes, more than {MAX_PULL_LINE}")
    return data + b"\n"


def decode(line: bytes, cls: Type[M]) -> M:
    """The message of type `cls` in `line`; PullError saying what is wrong otherwise."""
    try:
        obj = json.loads(line.decode("utf-8"), parse_constant=reject_json_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PullError(f"expected a {cls.TYPE} line (JSON)") from None
    return _from_obj(obj, cls)


def _from_obj(obj: Any, cls: Type[M]) -> M:
    if not isinstance(obj, dict) or obj.get("type") != cls.TYPE:
        got = obj.get("type") if isinstance(obj, dict) else type(obj).__name__
        raise PullError(f"expected a {cls.TYPE} message, got {got!r}")
    if obj.get("v", PULL_VERSION) != PULL_VERSION:
        raise PullError(f"pull protocol version {obj.get('v')!r} is not supported (this side speaks {PULL_VERSION})")
    kwargs: Dict[str, Any] = {}
    for name, check, required in _specs(cls):
        if name not in obj:
            if required:
                raise PullError(f"{cls.TYPE}: missing {name}")
            continue  # a field with a default may be left out
        value = obj[name]
        try:
            kwargs[name] = check(value)
        except TypeError as exc:
            raise PullError(f"{cls.TYPE}: {name} must be {exc}, got {describe_json(value)}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise PullError(f"{cls.TYPE}: {exc}") from None


_SPECS: Dict[type, List[Tuple[str, Callable[[Any], Any], bool]]] = {}


def _specs(cls: Type[_Msg]) -> List[Tuple[str, Callable[[Any], Any], bool]]:
    """(name, checker, required) of each field: pclient.protocol's checkers, and for a field
    holding a message (a Report, a PullJob) that message's own decoding."""
    specs = _SPECS.get(cls)
    if specs is None:
        hints = typing.get_type_hints(cls)
        specs = _SPECS[cls] = [(f.name, _checker(hints[f.name]),
                                f.default is MISSING and f.default_factory is MISSING) for f in fields(cls)]
    return specs


def _checker(hint: Any) -> Callable[[Any], Any]:
    nested = [arg for arg in typing.get_args(hint) if isinstance(arg, type) and issubclass(arg, _Msg)]
    if isinstance(hint, type) and issubclass(hint, _Msg):
        nested = [hint]
    if not nested:
        return checker_for(hint)
    kind = nested[0]
    optional = type(None) in typing.get_args(hint)

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, dict):
            raise TypeError(f"a {kind.TYPE} object" + (" or null" if optional else ""))
        return _from_obj(value, kind)

    return check
