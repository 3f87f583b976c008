"""A controller job's whole output into its task's `stdout PATH` / `stderr PATH` files.

A controller task with such a file submits its jobs with `-spool`: the agent keeps every byte
the job writes, and when the job has ended sched reads the streams back from pcontrol in
pieces (`output ID STREAM -offset N`, 1 MiB each, base64 on the wire) and streams them into the
destination through pclient.output's Sink: a spool file beside PATH that replaces PATH (or is
appended to it) once complete, so the file gets exactly the job's bytes, however large, and
sched holds one piece at a time.  The exit macro's $stdout is still the head pcontrol keeps.

    errors = await fetch_into_files(client, controller_id, {"stdout": OutputFile(path)})

A stream that cannot be fetched (its host is down, its spool gone) leaves its file as it was:
the error says so, and sched does not put the head in its place as if it were the whole.

A job whose output did not fit in its end event and that has no such file gets its $stdout and
$stderr as a DeferredOutput: the `check job -output` that brings them is sent only if the exit
macro (or a `-var` destination) reads one of them.

    output = DeferredOutput(address, controller_id, "job 12 (controller job 40)")
    sched.job_ended(job, ..., deferred=output.streams())
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from typing import Any, Mapping, Protocol

from pclient.output import OutputFile, Sink
from pcontrol.client import ControllerAddress, run_command
from pcontrol.errors import ClientError

from ..lang.errors import ScriptError
from .local import output_text

__all__ = ["Caller", "DeferredOutput", "fetch_into_files"]


class Caller(Protocol):
    """What is used of the controller client: a request whose reply data is returned."""

    async def call(self, *argv: str) -> Any: ...


async def fetch_into_files(client: Caller, controller_id: int, dests: Mapping[str, OutputFile]) -> list[str]:
    """Fetch each stream into its file; what went wrong, stream by stream."""
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    for stream, dest in dests.items():
        sink = Sink(0, dest)
        if sink.error is not None:
            errors.append(sink.error)
            continue
        offset = 0
        try:
            while True:
                reply = await client.call("output", str(controller_id), stream, "-offset", str(offset), "-json")
                piece = base64.b64decode(reply["data"], validate=True)
                await loop.run_in_executor(None, sink.feed, piece)
                offset += len(piece)
                if reply["eof"] or not piece:
                    break
        except (ClientError, KeyError, TypeError, binascii.Error, ValueError) as exc:
            sink.abandon()
            errors.append(f"could not fetch the {stream} from the controller: {exc}")
            continue
        error = await loop.run_in_executor(None, sink.finish)
        if error is not None:
            errors.append(error)
    return errors


def call_from_macro(argv: list[str], address: ControllerAddress) -> Any:
    """One pcontrol command (its Reply) from code that the loop runs (a macro), where nothing
    can wait on the loop: sent on a connection of its own by a helper thread with its own short
    loop, while the macro (and so the loop) waits for it, at most pcontrol.client's timeout.
    Raises ClientError (not running, timed out, disconnected)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["reply"] = run_command(argv, address=address)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread as data
            box["error"] = exc

    worker = threading.Thread(target=work, name="sched-macro-call", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        error = box["error"]
        raise error if isinstance(error, ClientError) else ClientError(str(error))
    return box["reply"]


class DeferredOutput:
    """A finished controller job's stdout and stderr, fetched on first use (once, both).

    The exit macro runs inside the scheduler's loop and the interpreter cannot wait there
    (run_until refuses), so the fetch is one request on a connection of its own, made by a
    helper thread while the macro (and so the loop) waits for it: only for a macro that reads
    the output, and only for that request.
    """

    def __init__(self, address: ControllerAddress, controller_id: int, what: str):
        self.address = address
        self.controller_id = controller_id
        self.what = what  # "job 12 (controller job 40)", for errors
        self._texts: dict[str, str] | None = None

    def streams(self) -> dict[str, "DeferredStream"]:
        return {"stdout": DeferredStream(self, "stdout"), "stderr": DeferredStream(self, "stderr")}

    def text(self, stream: str) -> str:
        if self._texts is None:
            record = self._fetch()
            self._texts = {name: output_text((record.get(name) or "").encode(), record.get(f"{name}_bytes") or 0,
                                             bool(record.get(f"{name}_truncated")))
                           for name in ("stdout", "stderr")}
        return self._texts[stream]

    def _fetch(self) -> dict[str, Any]:
        argv = ["check", "job", str(self.controller_id), "-output", "-json"]
        try:
            reply = call_from_macro(argv, self.address)
            error = None if reply.ok else reply.text
        except ClientError as exc:
            reply, error = None, str(exc)
        if error is None and not isinstance(reply.data, dict):
            error = "the controller's reply holds no record"
        if error is not None:
            raise ScriptError(f"could not fetch the output of {self.what} from the controller: {error}")
        return reply.data


class DeferredStream:
    """One stream of a DeferredOutput (a psched.lang.interp.Deferred)."""

    __slots__ = ("output", "stream")

    def __init__(self, output: DeferredOutput, stream: str):
        self.output = output
        self.stream = stream

    def value(self) -> str:
        return self.output.text(self.stream)
