"""A small etcd v3 client over etcd's HTTP/JSON gateway, standard library only, never blocking the loop.

    etcd = Etcd(["http://10.0.0.1:2379", "http://10.0.0.2:2379"], timeout=1.0)
    lease, ttl = await etcd.grant(5)              # a lease of 5 s
    ttl = await etcd.keepalive(lease)             # renewed (0: it had expired)
    ok, kvs = await etcd.txn([Compare.created(key, 0)], [put(key, b"me", lease)], [get(key)])
    kv = await etcd.get(key); kvs = await etcd.get_prefix(prefix)

Each call is one HTTP/1.1 POST on a fresh connection (asyncio streams), bounded by `timeout`;
the endpoints are tried in turn, so a cluster of three answers while one member is down. What
goes wrong is an EtcdError (unreachable, a refusal, a reply we cannot read). Keys and values
are bytes on our side, base64 on the wire, as the gateway wants; revisions and lease ids come
back as strings there and are ints here. etcd 3.4 (Debian's etcd-server) serves the gateway
under /v3/.

This is the coordination service of high availability (psched.scheduler.ha); it knows nothing of it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

__all__ = ["Etcd", "EtcdError", "KeyValue", "Compare", "put", "delete", "get", "prefix_end"]

MAX_REPLY = 16 * 1024 * 1024
"""Bytes of one reply we read at most (a state of months must still fit: it is far less)."""


class EtcdError(Exception):
    """etcd could not be reached, refused the call, or said something we cannot read."""


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int


@dataclass(frozen=True)
class Compare:
    """One condition of a transaction (the gateway's `Compare`)."""

    key: bytes
    target: str       # CREATE, MOD, VERSION, VALUE, LEASE
    result: str       # EQUAL, GREATER, LESS, NOT_EQUAL
    field: str
    value: Any

    @classmethod
    def created(cls, key: bytes, revision: int, result: str = "EQUAL") -> "Compare":
        """The key's create revision compared with `revision` (0: the key does not exist)."""
        return cls(key, "CREATE", result, "create_revision", str(revision))

    def wire(self) -> dict[str, Any]:
        return {"key": _b64(self.key), "target": self.target, "result": self.result, self.field: self.value}


def put(key: bytes, value: bytes, lease: int | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        op["lease"] = str(lease)
    return {"requestPut": op}


def delete(key: bytes, *, prefix: bool = False) -> dict[str, Any]:
    op = {"key": _b64(key)}
    if prefix:
        op["range_end"] = _b64(prefix_end(key))
    return {"requestDeleteRange": op}


def get(key: bytes) -> dict[str, Any]:
    return {"requestRange": {"key": _b64(key)}}


def prefix_end(prefix: bytes) -> bytes:
    """The end of the range of every key that starts with `prefix` (etcd's convention)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


class Etcd:
    """The client (see the module docstring)."""

    def __init__(self, endpoints: list[str], timeout: float = 1.0):
        if not endpoints:
            raise ValueError("etcd: no endpoint given")
        self.endpoints = [_endpoint(url) for url in endpoints]
        self.timeout = timeout
        self._preferred = 0

    # -- leases ---------------------------------------------------------------------------------

    async def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease of `ttl` seconds: (id, the TTL etcd gave)."""
        reply = await self.call("/v3/lease/grant", {"TTL": int(ttl)})
        if reply.get("error"):
            raise EtcdError(f"lease grant refused: {reply['error']}")
        return int(reply["ID"]), int(reply.get("TTL", ttl))

    async def keepalive(self, lease: int) -> int:
        """Renew `lease`; its TTL from now (0: it had expired, or is unknown)."""
        reply = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        result = reply.get("result", reply)
        if "error" in reply:
            raise EtcdError(f"lease keepalive refused: {reply['error']}")
        return int(result.get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        await self.call("/v3/lease/revoke", {"ID": str(lease)})

    # -- keys -----------------------------------------------------------------------------------

    async def get(self, key: bytes) -> KeyValue | None:
        reply = await self.call("/v3/kv/range", {"key": _b64(key)})
        kvs = [_kv(item) for item in reply.get("kvs", [])]
        return kvs[0] if kvs else None

    async def get_prefix(self, prefix: bytes) -> list[KeyValue]:
        reply = await self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        return [_kv(item) for item in reply.get("kvs", [])]

    async def txn(self, compare: list[Compare], success: list[dict], failure: list[dict] = ()) -> tuple[bool, int, list[KeyValue]]:
        """(succeeded, the revision after it, the key-values of the range requests that ran)."""
        reply = await self.call("/v3/kv/txn", {"compare": [c.wire() for c in compare],
                                               "success": list(success), "failure": list(failure)})
        kvs: list[KeyValue] = []
        for response in reply.get("responses", []):
            ranged = response.get("response_range")
            if ranged:
                kvs += [_kv(item) for item in ranged.get("kvs", [])]
        revision = int(reply.get("header", {}).get("revision", 0))
        return bool(reply.get("succeeded")), revision, kvs

    # -- the wire -------------------------------------------------------------------------------

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to `path` at the first endpoint that answers."""
        errors = []
        count = len(self.endpoints)
        for step in range(count):
            index = (self._preferred + step) % count
            host, port = self.endpoints[index]
            try:
                reply = await asyncio.wait_for(_post(host, port, path, body), self.timeout)
            except (OSError, asyncio.TimeoutError, EtcdError) as exc:
                errors.append(f"{host}:{port}: {_why(exc)}")
                continue
            self._preferred = index
            return reply
        raise EtcdError("; ".join(errors))


async def _post(host: str, port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        await writer.drain()
        raw = await reader.read(MAX_REPLY)
        while True:
            more = await reader.read(MAX_REPLY)
            if not more:
                break
            raw += more
            if len(raw) > MAX_REPLY:
                raise EtcdError("reply too long")
    finally:
        writer.close()
    return _parse_reply(raw)


def _parse_reply(raw: bytes) -> dict[str, Any]:
    head, sep, payload = raw.partition(b"\r\n\r\n")
    if not sep:
        raise EtcdError("a reply without headers")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise EtcdError(f"not an HTTP reply: {lines[0][:80]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        payload = _unchunk(payload)
    text = payload.decode("utf-8", "replace").strip()
    try:
        reply = json.loads(text.splitlines()[0]) if text else {}
    except ValueError as exc:
        raise EtcdError(f"HTTP {parts[1]}: not JSON: {text[:120]!r}") from exc
    if parts[1] != "200":
        message = reply.get("message") or reply.get("error") or text[:120]
        raise EtcdError(f"HTTP {parts[1]}: {message}")
    return reply


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


def _kv(item: dict[str, Any]) -> KeyValue:
    return KeyValue(key=base64.b64decode(item.get("key", "")), value=base64.b64decode(item.get("value", "")),
                    create_revision=int(item.get("create_revision", 0)), mod_revision=int(item.get("mod_revision", 0)),
                    lease=int(item.get("lease", 0)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "//" in url else f"http://{url}")
    if parts.scheme not in ("http", "") or not parts.hostname:
        raise ValueError(f"etcd endpoint {url!r}: give http://HOST:PORT (TLS is not supported)")
    return parts.hostname, parts.port or 2379


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
