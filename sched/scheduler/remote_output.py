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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any, Protocol

from pclient.output import OutputFile, Sink
from pcontrol.errors import ClientError

__all__ = ["Caller", "fetch_into_files"]


class Caller(Protocol):
    """What is used of the controller client: a request whose reply data is returned."""

    async def call(self, *argv: str) -> Any: ...


async def fetch_into_files(client: Caller, controller_id: int, dests: dict[str, OutputFile]) -> list[str]:
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
