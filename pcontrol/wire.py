"""The client protocol: sched / CLI <-> pcontrol over its Unix socket.

Line-delimited JSON, UTF-8, one object per line.

    request  {"id": N, "argv": ["host", "add", "node1", "-slots", "4"]}      (optional "v": 1)
    reply    {"id": N, "ok": true|false, "text": "...", "data": <json|null>,
              "error": {"code": "...", "message": "..."} | null}
    event    {"event": "job"|"host", "seq": N, "data": {...record...}}

Requests may be pipelined; each reply carries the id of its request. Events are only sent
to a connection that ran `subscribe`. A line that cannot be decoded is answered with an
error reply (id null when it could not be read) and the connection stays up.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Union

from .errors import ErrorCode, WireError

WIRE_VERSION = 1
#: The longest line either side accepts (bytes, newline included).
MAX_LINE = 16 * 1024 * 1024
#: Longest argv a request may carry; keeps a hostile client from costing us much.
MAX_ARGS = 100_000


class EventKind(str, enum.Enum):
    """What an event reports."""

    JOB = "job"     #: a job changed state (data: the job record, without output)
    HOST = "host"   #: a host changed state (data: the host record)


@dataclass(frozen=True)
class Request:
    id: int
    argv: tuple[str, ...]
    v: int = WIRE_VERSION


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str


@dataclass(frozen=True)
class Reply:
    id: int | None
    ok: bool
    text: str = ""
    data: Any = None
    error: ErrorInfo | None = None

    @classmethod
    def success(cls, request_id: int | None, text: str, data: Any = None) -> "Reply":
        return cls(request_id, True, text, data, None)

    @classmethod
    def failure(cls, request_id: int | None, code: ErrorCode | str, message: str,
                data: Any = None) -> "Reply":
        code_text = code.value if isinstance(code, ErrorCode) else str(code)
        return cls(request_id, False, message, data, ErrorInfo(code_text, message))


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0


Message = Union[Request, Reply, Event]


def encode(msg: Message) -> bytes:
    """One line of JSON, newline included."""
    if isinstance(msg, Request):
        obj: dict[str, Any] = {"id": msg.id, "argv": list(msg.argv)}
        if msg.v != WIRE_VERSION:
            obj["v"] = msg.v
    elif isinstance(msg, Reply):
        obj = {"id": msg.id, "ok": msg.ok, "text": msg.text, "data": msg.data,
               "error": (None if msg.error is None
                         else {"code": msg.error.code, "message": msg.error.message})}
    elif isinstance(msg, Event):
        obj = {"event": msg.kind.value, "seq": msg.seq, "data": msg.data}
    else:
        raise TypeError(f"not a wire message: {msg!r}")
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _load_object(line: bytes | str) -> dict[str, Any]:
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise WireError(f"line of {len(line)} bytes exceeds the limit of {MAX_LINE}",
                            code=ErrorCode.TOO_LONG)
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        obj = json.loads(line)
    except RecursionError as exc:
        raise WireError("JSON nested too deeply") from exc
    except ValueError as exc:
        raise WireError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise WireError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode_request(line: bytes | str) -> Request:
    """Decode one request line; WireError (with the id when readable) if malformed."""
    obj = _load_object(line)
    request_id = obj.get("id")
    if not _is_int(request_id):
        raise WireError('request needs an integer "id"')
    version = obj.get("v", WIRE_VERSION)
    if not _is_int(version):
        raise WireError('"v" must be an integer', request_id=request_id)
    if version > WIRE_VERSION:
        raise WireError(f"wire version {version} is not supported (this is {WIRE_VERSION})",
                        code=ErrorCode.UNSUPPORTED, request_id=request_id)
    argv = obj.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise WireError('"argv" must be a list of strings', request_id=request_id)
    if not argv:
        raise WireError('"argv" is empty', request_id=request_id)
    if len(argv) > MAX_ARGS:
        raise WireError(f'"argv" has {len(argv)} words, more than {MAX_ARGS}',
                        request_id=request_id)
    return Request(request_id, tuple(argv), version)


def decode_server_message(line: bytes | str) -> Reply | Event:
    """Decode one line the server sent: a reply or an event."""
    obj = _load_object(line)
    if "event" in obj:
        try:
            kind = EventKind(obj["event"])
        except ValueError as exc:
            raise WireError(f"unknown event kind {obj['event']!r}") from exc
        data = obj.get("data")
        if not isinstance(data, dict):
            raise WireError('event "data" must be an object')
        seq = obj.get("seq", 0)
        return Event(kind, data, seq if _is_int(seq) else 0)
    request_id = obj.get("id")
    if request_id is not None and not _is_int(request_id):
        raise WireError('reply "id" must be an integer or null')
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise WireError('reply needs a boolean "ok"')
    text = obj.get("text", "")
    if not isinstance(text, str):
        raise WireError('reply "text" must be a string')
    error = obj.get("error")
    info = None
    if error is not None:
        if (not isinstance(error, dict) or not isinstance(error.get("code"), str)
                or not isinstance(error.get("message"), str)):
            raise WireError('reply "error" must be {"code": str, "message": str} or null')
        info = ErrorInfo(error["code"], error["message"])
    return Reply(request_id, ok, text, obj.get("data"), info)
