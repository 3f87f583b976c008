"""The client protocol: sched / CLI <-> pcontrol over its Unix socket.

Line-delimited JSON, UTF-8, one object per line.

    request  {"id": N, "argv": ["host", "add", "node1", "-slots", "4"]}      (optional "v": 1)
    batch    {"id": N, "v": 2, "batch": [["job", ..., "--", "true"], ...]}   (version 2)
    reply    {"id": N, "ok": true|false, "text": "...", "data": <json|null>,
              "error": {"code": "...", "message": "..."} | null}
    event    {"event": "job"|"host"|"alert", "seq": N, "data": {...record...}}

Requests may be pipelined; each reply carries the id of its request. A batch (wire version 2)
carries many `job` submissions in one line; its one reply's data is the list of their replies
as objects (`{"ok", "text", "data", "error"}`), in order. A pcontrol of version 1 refuses it
(UNSUPPORTED, "wire version 2 is not supported"), and the client sends the jobs one by one. Events are only sent
to a connection that ran `subscribe`. A line that cannot be decoded is answered with an
error reply (id null when it could not be read) and the connection stays up.

Strings must be Unicode text: a request whose argv holds a lone surrogate (a "\\ud800"
escape, which JSON allows) is refused here, at the edge, before it can reach the journal
or an agent. `encode` never fails on such text from elsewhere: it falls back to ASCII
escapes.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import json.scanner
import re
from dataclasses import dataclass, field
from typing import Any, Union

from pclient import jsontext

from .errors import ErrorCode, WireError

WIRE_VERSION = 2
"""The newest version this side speaks. 2 adds batches; a plain request is the same in 1 and 2
(so it goes without "v" and an older pcontrol serves it)."""
BATCH_VERSION = 2
#: The verbs a batch may carry (they are run in order without waiting for each other's reply).
BATCHABLE = frozenset({"job"})
#: Most commands in one batch.
MAX_BATCH = 4096
#: The longest line either side accepts (bytes, newline included).
MAX_LINE = 16 * 1024 * 1024
#: Longest argv a request may carry; keeps a hostile client from costing us much.
MAX_ARGS = 100_000


class EventKind(str, enum.Enum):
    """What an event reports."""

    JOB = "job"     #: a job changed state (data: the job record, without output, except that
                    #: a job's end holds "stdout" and "stderr" whole when they are short; for a
                    #: `subscribe -brief` connection the short record, model.Job.to_brief)
    HOST = "host"   #: a host changed state (data: the host record)
    ALERT = "alert"  #: an alert episode started or ended (data: alerts.AlertNotice's record:
                     #: state alert|recovery, host, condition missed|skew, subject, body)


class Interest(str, enum.Enum):
    """What a subscriber may ask to be sent (`subscribe -only start,end`; without -only, all).

    A job event's interest follows from its record; a scheduler needs only START and END.
    """

    QUEUED = "queued"    #: a job waits for a slot (state PENDING)
    START = "start"      #: a job was sent to its host (BUSY, no pid yet)
    RUNNING = "running"  #: its process started (BUSY with a pid), was asked to die, or is out of reach
    END = "end"          #: it finished (DONE, not harvested yet): the outcome, and a short output, in the record
    HARVEST = "harvest"  #: its owner acknowledged its end (DONE, harvested)
    HOST = "host"        #: a host out of service changed (added, lost, connecting, switched off)
    LOAD = "load"        #: a host in service changed (IDLE <-> BUSY as its slots fill and free)
    ALERT = "alert"      #: an alert about a host started or ended (missed run times, SKEWED clock)

    @classmethod
    def parse_list(cls, text: str) -> frozenset["Interest"]:
        """`start,end` -> {START, END}; ValueError naming what is not an interest."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in cls._value2member_map_]
        if unknown or not names:
            raise ValueError(f"unknown event interest {', '.join(unknown) or repr(text)}: "
                             f"should be a comma list of {', '.join(m.value for m in cls)}")
        return frozenset(cls(n) for n in names)


def interest_of(kind: "EventKind", data: dict[str, Any]) -> Interest:
    """Which interest an event (its kind and record) answers."""
    state = data.get("state")
    if kind is EventKind.ALERT:
        return Interest.ALERT
    if kind is EventKind.HOST:
        return Interest.LOAD if state in ("IDLE", "BUSY") else Interest.HOST
    return job_interest(state, data.get("harvested"), data.get("pid"), data.get("kill_requested"),
                        data.get("unknown_since"))


def job_interest(state: str | None, harvested: Any, pid: Any, kill_requested: Any,
                 unknown_since: Any) -> Interest:
    """Which interest a job event answers, from the fields of its record that decide it
    (interest_of; the controller asks it of a job without making the record first)."""
    if state == "DONE":
        return Interest.END if harvested is None else Interest.HARVEST
    if state == "BUSY":
        if pid is None and not kill_requested and unknown_since is None:
            return Interest.START
        return Interest.RUNNING
    return Interest.QUEUED


@dataclass(frozen=True)
class Request:
    id: int
    argv: tuple[str, ...]
    v: int = WIRE_VERSION
    batch: tuple[tuple[str, ...], ...] = ()   #: a batch's commands (then argv is empty)
    fence: int | None = None  #: the fencing token of a pool's leader (pcontrol.adoption); None: no pool


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
    def failure(cls, request_id: int | None, code: enum.Enum | str, message: str,
                data: Any = None) -> "Reply":
        code_text = code.value if isinstance(code, enum.Enum) else str(code)
        return cls(request_id, False, message, data, ErrorInfo(code_text, message))


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0


Message = Union[Request, Reply, Event]


#: Made once: json.dumps with any option makes a new encoder for every call (the same
#: options, so the same bytes); one line a message, about six a controller job.
#: The C encoder itself made once, too (pclient.jsontext).
_encode = jsontext.encoder(separators=(",", ":"), ensure_ascii=False)
_encode_ascii = jsontext.encoder(separators=(",", ":"), ensure_ascii=True)


def encode(msg: Message) -> bytes:
    """One line of JSON, newline included."""
    obj: dict[str, Any]
    if isinstance(msg, Event):          # the commonest, several a job
        obj = {"event": msg.kind._value_, "seq": msg.seq, "data": msg.data}
    elif isinstance(msg, Reply):
        obj = reply_object(msg)
    elif isinstance(msg, Request):
        if msg.batch:
            obj = {"id": msg.id, "v": max(msg.v, BATCH_VERSION),
                   "batch": [list(argv) for argv in msg.batch]}
        else:
            obj = {"id": msg.id, "argv": list(msg.argv)}
            if msg.v != WIRE_VERSION:
                obj["v"] = msg.v
        if msg.fence is not None:
            obj["fence"] = msg.fence
    else:
        raise TypeError(f"not a wire message: {msg!r}")
    text = _encode(obj)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:      # a lone surrogate somewhere: escape it, stay valid UTF-8
        return _encode_ascii(obj).encode("ascii") + b"\n"


def _text(line: bytes | str) -> str:
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise WireError(f"line of {len(line)} bytes exceeds the limit of {MAX_LINE}",
                            code=ErrorCode.TOO_LONG)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if len(line) > MAX_LINE:
        raise WireError(f"line of {len(line)} characters exceeds the limit of {MAX_LINE}",
                        code=ErrorCode.TOO_LONG)
    return line


def _load_object(line: bytes | str) -> dict[str, Any]:
    text = _text(line)
    if text[:1] == "{":
        # A line as both sides write them (an object from its first character, then at most
        # its newline) is scanned at once, without json.loads' layers and its two whitespace
        # matches: a scheduler decodes ~4 lines a controller job (issue 13). Anything else, a
        # malformed line included, goes the whole way below, for its error.
        try:
            obj, end = _SCAN_VALUE(text, 0)
        except (StopIteration, ValueError, RecursionError):
            pass
        else:
            if end == len(text) or (end == len(text) - 1 and text[end] == "\n"):
                return obj
    try:
        obj = json.loads(text)
    except RecursionError as exc:
        raise WireError("JSON nested too deeply") from exc
    except ValueError as exc:
        raise WireError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise WireError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


# -- requests with very many values -----------------------------------------------------------
#
# json.loads builds every value of a line before we can look at it: a 16 MiB line of `[],`
# is five million lists (~400 MB, a second and a half of a blocked loop), and `"ab",` or
# `1.5,` cost nearly as much. A request needs at most MAX_ARGS strings, so a line with more
# separators than that is read piece by piece instead, and refused at the first value a
# request cannot hold.

#: A request line with more `,` `[` `{` than this is decoded piece by piece.
PIECEWISE_SEPARATORS = MAX_ARGS + 64

_SCAN_VALUE = json.scanner.make_scanner(json.JSONDecoder())   # one JSON value at an index
_SPACE = re.compile(r"[ \t\n\r]*")


def _load_request_object(line: bytes | str) -> dict[str, Any]:
    if isinstance(line, bytes):
        separators = line.count(b",") + line.count(b"[") + line.count(b"{")
    else:
        separators = line.count(",") + line.count("[") + line.count("{")
    if separators <= PIECEWISE_SEPARATORS:
        return _load_object(line)
    return _PiecewiseRequest(_text(line)).parse()


class _PiecewiseRequest:
    """Decodes `{"key": scalar, ..., "argv": [string, ...]}` one value at a time."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.obj: dict[str, Any] = {}

    def parse(self) -> dict[str, Any]:
        self._expect("{", "expected a JSON object")
        if self._peek() == "}":
            self.pos += 1
        else:
            while True:
                key = self._string("not JSON: expected a key string")
                self._expect(":", "not JSON: expected ':'")
                if key == "argv" and self._peek() == "[":
                    self.obj[key] = self._argv()
                else:
                    self.obj[key] = self._scalar(key)
                if self._peek() == ",":
                    self.pos += 1
                    continue
                self._expect("}", "not JSON: expected ',' or '}'")
                break
        if self._peek() != "":
            raise WireError(f"not JSON: extra data at character {self.pos}")
        return self.obj

    def _peek(self) -> str:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
        return self.text[self.pos:self.pos + 1]

    def _expect(self, char: str, message: str) -> None:
        if self._peek() != char:
            raise WireError(f"{message} at character {self.pos}")
        self.pos += 1

    def _value(self) -> Any:
        try:
            value, self.pos = _SCAN_VALUE(self.text, self.pos)
        except StopIteration:
            raise WireError(f"not JSON: expected a value at character {self.pos}") from None
        except (ValueError, RecursionError) as exc:
            raise WireError(f"not JSON: {exc}") from None
        return value

    def _string(self, message: str) -> str:
        if self._peek() != '"':
            raise WireError(f"{message} at character {self.pos}")
        return self._value()

    def _scalar(self, key: str) -> Any:
        if self._peek() in ("[", "{"):
            raise WireError(f"{key!r} holds a list or an object, which a request has no use "
                            f"for; refused unread (the line has very many values)",
                            request_id=self._id())
        return self._value()

    def _argv(self) -> list[str]:
        self.pos += 1                       # the "["
        words: list[str] = []
        if self._peek() == "]":
            self.pos += 1
            return words
        while True:
            if len(words) == MAX_ARGS:
                raise WireError(f'"argv" has more than {MAX_ARGS} words', request_id=self._id())
            if self._peek() != '"':
                raise WireError('"argv" must be a list of strings', request_id=self._id())
            words.append(self._value())
            if self._peek() == ",":
                self.pos += 1
                continue
            self._expect("]", "not JSON: expected ',' or ']'")
            return words

    def _id(self) -> int | None:
        request_id = self.obj.get("id")
        return request_id if _is_int(request_id) else None


def _excerpt(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, (list, dict)) or len(value) < limit else \
        f"<{type(value).__name__} of {len(value)} items>"
    return text if len(text) <= limit else text[:limit] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def reply_object(reply: Reply) -> dict[str, Any]:
    """A reply as the JSON object it travels as (also each item of a batch's reply)."""
    return {"id": reply.id, "ok": reply.ok, "text": reply.text, "data": reply.data,
            "error": (None if reply.error is None
                      else {"code": reply.error.code, "message": reply.error.message})}


def success_object(request_id: int | None, text: str, data: Any = None) -> dict[str, Any]:
    """reply_object(Reply.success(request_id, text, data)), without making the Reply (a
    batch's reply holds one a job)."""
    return {"id": request_id, "ok": True, "text": text, "data": data, "error": None}


def _check_words(argv: Any, what: str, request_id: int) -> list[str]:
    if not isinstance(argv, list) or not all(map(isinstance, argv, itertools.repeat(str))):
        raise WireError(f'{what} must be a list of strings', request_id=request_id)
    if not argv:
        raise WireError(f'{what} is empty', request_id=request_id)
    if len(argv) > MAX_ARGS:
        raise WireError(f'{what} has {len(argv)} words, more than {MAX_ARGS}',
                        request_id=request_id)
    try:
        "".join(argv).encode("utf-8")  # one encode for the common case; the word at fault below
        return argv
    except UnicodeEncodeError:
        pass
    for index, word in enumerate(argv):
        try:
            word.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise WireError(f'{what} word {index} is not Unicode text (a lone surrogate '
                            f'{word[exc.start]!r} at character {exc.start})',
                            request_id=request_id) from None
    return argv


def _decode_batch(obj: dict[str, Any], request_id: int, version: int) -> Request:
    if version < BATCH_VERSION:
        raise WireError(f'"batch" needs wire version {BATCH_VERSION} ("v": {BATCH_VERSION})',
                        request_id=request_id)
    batch = obj["batch"]
    if not isinstance(batch, list) or not batch:
        raise WireError('"batch" must be a non-empty list of argv lists', request_id=request_id)
    if len(batch) > MAX_BATCH:
        raise WireError(f'"batch" has {len(batch)} commands, more than {MAX_BATCH}',
                        request_id=request_id)
    commands = tuple(tuple(_check_words(argv, f'"batch" command {index}', request_id))
                     for index, argv in enumerate(batch))
    if sum(map(len, commands)) > MAX_ARGS:
        raise WireError(f'"batch" has more than {MAX_ARGS} words in all', request_id=request_id)
    return Request(request_id, (), version, commands)


def decode_request(line: bytes | str) -> Request:
    """Decode one request line; WireError (with the id when readable) if malformed."""
    obj = _load_request_object(line)
    request_id = obj.get("id")
    if not _is_int(request_id):
        raise WireError('request needs an integer "id"')
    version = obj.get("v", WIRE_VERSION)
    if not _is_int(version):
        raise WireError('"v" must be an integer', request_id=request_id)
    if version > WIRE_VERSION:
        raise WireError(f"wire version {version} is not supported (this is {WIRE_VERSION})",
                        code=ErrorCode.UNSUPPORTED, request_id=request_id)
    fence = obj.get("fence")
    if fence is not None and (not _is_int(fence) or fence < 0):
        raise WireError('"fence" must be an integer >= 0', request_id=request_id)
    if "batch" in obj:
        return dataclasses.replace(_decode_batch(obj, request_id, version), fence=fence)
    argv = _check_words(obj.get("argv"), '"argv"', request_id)
    return Request(request_id, tuple(argv), version, fence=fence)


_EVENT_KINDS: dict[str, EventKind] = {kind._value_: kind for kind in EventKind}


def decode_server_message(line: bytes | str) -> Reply | Event:
    """Decode one line the server sent: a reply or an event."""
    obj = _load_object(line)
    if "event" in obj:
        name = obj["event"]
        kind = _EVENT_KINDS.get(name) if type(name) is str else None  # EventKind(name) walks enum's __call__
        if kind is None:
            try:
                kind = EventKind(name)
            except ValueError as exc:
                raise WireError(f"unknown event kind {_excerpt(name)}") from exc
        data = obj.get("data")
        if not isinstance(data, dict):
            raise WireError('event "data" must be an object')
        seq = obj.get("seq", 0)
        return Event(kind, data, seq if _is_int(seq) else 0)
    return reply_from_object(obj)


def reply_from_object(obj: Any) -> Reply:
    """A reply from its JSON object (a reply line, or an item of a batch's reply)."""
    if not isinstance(obj, dict):
        raise WireError("a reply must be a JSON object")
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
