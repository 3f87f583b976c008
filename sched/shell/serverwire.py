"""The messages between a sched server and the prompts attached to it: one JSON object a line.

    prompt -> server   {"v": 1, "op": "eval", "id": 3, "script": "status"}
                       {"v": 1, "op": "quit", "id": 4, "force": true}
                       {"v": 1, "op": "stop", "id": 5}
                       {"v": 1, "op": "interrupt", "id": 6}    (a TCP prompt's Ctrl-C)
    server -> prompt   {"v": 1, "type": "hello", "pid": 1234, "home": "/home/u/.sched"}
                       {"v": 1, "type": "output", "text": "job 7 done\\n", "id": 0}
                       {"v": 1, "type": "reply", "id": 3, "ok": true, "text": "...",
                        "leaving": false, "status": null, "vetoes": []}

The server greets each prompt with `hello` (its pid: Ctrl-C at the prompt is SIGINT to it). A
server of a pool (sched --serve --ha) adds to it `member` (its name in the pool), `standby`
(true: it carries requests on to the leader, psched.shell.harelay), `leader` (who leads, as it
last saw) and `pool` (the members' TCP addresses: where a prompt goes when this one is gone);
a client that knows nothing of pools reads a hello without them.
`reply.ok` false carries the rendered error in `text`; `vetoes` (with ok false) are the quit
checks' reasons not to stop the server, which the prompt asks its user about before sending
`quit` with `force`; `leaving` says the server stops after this reply, with `status`.
A line that is not one of these messages is answered with an error reply (id 0), never
a dropped connection or a dead server.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Union

PROTOCOL_VERSION = 1
#: Longest request line the server reads (a pasted script of some thousand lines fits).
MAX_REQUEST_LINE = 16 * 1024 * 1024


class WireError(ValueError):
    """A line that is not a message of this protocol; the text says why."""


class Op(str, enum.Enum):
    """What a prompt asks of the server."""

    EVAL = "eval"    #: run a script, as if typed at the server's own prompt
    QUIT = "quit"    #: stop the server (with `force`, whatever the quit checks say)
    STOP = "stop"    #: stop the server now, as `quit -force` (sched --stop, SIGTERM)
    INTERRUPT = "interrupt"  #: Ctrl-C: interrupt its request if it waits (`wait`), or not begin it


@dataclass(frozen=True)
class Request:
    id: int
    op: Op
    script: str = ""
    force: bool = False
    line: int = 1                    #: the script's first line is this line of what the prompt read
                                     #: (commands piped to `sched --attach`: errors say their line)


@dataclass(frozen=True)
class Hello:
    pid: int
    home: str
    member: str = ""                 #: its name in its pool (sched --serve --ha); "" alone
    standby: bool = False            #: it stands by: requests go on to the leader (psched.shell.harelay)
    leader: str = ""                 #: who leads, since when, the token, as it last saw
    pool: tuple[str, ...] = ()       #: HOST:PORT of the pool's members that listen on TCP


@dataclass(frozen=True)
class Output:
    text: str
    id: int = 0         #: the request whose run wrote it; 0: written between requests


@dataclass(frozen=True)
class Reply:
    id: int
    ok: bool
    text: str = ""
    leaving: bool = False
    status: int | None = None
    vetoes: tuple[str, ...] = field(default_factory=tuple)


ServerMessage = Union[Hello, Output, Reply]
_TYPES: dict[type, str] = {Hello: "hello", Output: "output", Reply: "reply"}


def encode(message: Request | ServerMessage) -> bytes:
    body: dict[str, Any] = {"v": PROTOCOL_VERSION}
    if isinstance(message, Request):
        body.update(asdict(message), op=message.op.value)
    else:
        body.update(asdict(message), type=_TYPES[type(message)])
        if isinstance(message, Reply):
            body["vetoes"] = list(message.vetoes)
        if isinstance(message, Hello):
            body["pool"] = list(message.pool)
    return json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n"


def _object(line: bytes) -> dict[str, Any]:
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError(f"not a JSON line: {err}") from None
    if not isinstance(body, dict):
        raise WireError("a message is a JSON object")
    if body.get("v") != PROTOCOL_VERSION:
        raise WireError(f"protocol version {body.get('v')!r} is not {PROTOCOL_VERSION}")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    value = body.get(name, default)
    if value is ... or not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise WireError(f'"{name}" is missing or not of the right type')
    return value


def decode_request(line: bytes) -> Request:
    body = _object(line)
    try:
        op = Op(body.get("op"))
    except ValueError:
        raise WireError(f"unknown op {body.get('op')!r} (should be one of "
                        f"{', '.join(o.value for o in Op)})") from None
    return Request(id=_field(body, "id", int), op=op, script=_field(body, "script", str, ""),
                   force=_field(body, "force", bool, False), line=_field(body, "line", int, 1))


def decode_server_message(line: bytes) -> ServerMessage:
    body = _object(line)
    kind = body.get("type")
    if kind == "hello":
        pool = _field(body, "pool", list, [])
        return Hello(pid=_field(body, "pid", int), home=_field(body, "home", str),
                     member=_field(body, "member", str, ""), standby=_field(body, "standby", bool, False),
                     leader=_field(body, "leader", str, ""), pool=tuple(str(a) for a in pool))
    if kind == "output":
        return Output(text=_field(body, "text", str), id=_field(body, "id", int, 0))
    if kind == "reply":
        status = body.get("status")
        if status is not None and not isinstance(status, int):
            raise WireError('"status" must be an integer or null')
        vetoes = _field(body, "vetoes", list, [])
        return Reply(id=_field(body, "id", int), ok=_field(body, "ok", bool),
                     text=_field(body, "text", str, ""), leaving=_field(body, "leaving", bool, False),
                     status=status, vetoes=tuple(str(v) for v in vetoes))
    raise WireError(f"unknown message type {kind!r}")


__all__ = ["PROTOCOL_VERSION", "MAX_REQUEST_LINE", "WireError", "Op", "Request", "Hello", "Output",
           "Reply", "ServerMessage", "encode", "decode_request", "decode_server_message"]
