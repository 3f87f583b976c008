"""The pclient agent: serves the agent protocol on a Channel, runs jobs with jobproc.

    controller --run/kill/ping/bye--> Agent --JobSpec--> jobproc
    controller <--hello/started/ended/pong/error-- Agent <--JobResult--

One loop reads lines, decodes them, looks the message type up in a table and
awaits its handler; a bad line or a failing handler is answered with an
`error` message and the loop carries on.  Only `bye`, end of input, a stop
request (a signal) or a lost output stream end it; then every running job
is killed, reported `ended`, and `serve()` returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Union

from .jobproc import DEFAULT_KILL_GRACE, JobResult, JobSpec, RunningJob, start_job
from .protocol import (
    MAX_LINE,
    PROTOCOL_VERSION,
    Bye,
    Ended,
    Error,
    Hello,
    Kill,
    Ping,
    Pong,
    ProtocolError,
    Run,
    Started,
    decode,
    encode,
)
from .stdio import Channel, ClaimedStdio, StdioChannel

__all__ = ["AGENT_NAME", "AGENT_VERSION", "Agent", "LineSplitter", "LineTooLong", "ended_message", "run_agent"]

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"
AGENT_NAME = f"pclient {AGENT_VERSION}"
SHUTDOWN_MARGIN = 10.0
"""Seconds beyond the kill grace to wait for killed jobs to be reported at shutdown."""
_EXCERPT_BYTES = 200


@dataclass(frozen=True)
class LineTooLong:
    """Stands for an input line longer than the limit (its bytes are dropped)."""

    head: bytes
    """The start of the line, for the error excerpt."""


class LineSplitter:
    """Cuts a byte stream into lines (without their newline).

    A line longer than `limit` comes out once as a LineTooLong, as soon as it
    is known to be too long; the rest of it is skipped up to its newline.
    """

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[Union[bytes, LineTooLong]]:
        lines: list[Union[bytes, LineTooLong]] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif len(self._buffer) + end - start > self._limit:
                lines.append(LineTooLong(bytes((self._buffer + data[start:end])[:_EXCERPT_BYTES])))
            else:
                self._buffer += data[start:end]
                lines.append(bytes(self._buffer))
            self._buffer.clear()
            start = end + 1
        if not self._skipping:
            self._buffer += data[start:]
            if len(self._buffer) > self._limit:
                lines.append(LineTooLong(bytes(self._buffer[:_EXCERPT_BYTES])))
                self._buffer.clear()
                self._skipping = True
        return lines

    def flush(self) -> Union[bytes, None]:
        """The unterminated last line at end of input, if any."""
        rest = bytes(self._buffer) if self._buffer and not self._skipping else None
        self._buffer.clear()
        self._skipping = False
        return rest


def _excerpt(line: bytes) -> str:
    text = line[:_EXCERPT_BYTES].decode("utf-8", "replace")
    return text + "..." if len(line) > _EXCERPT_BYTES else text


def ended_message(result: JobResult) -> bytes:
    """The encoded `ended` line for a result, with output cut further if the
    line would not fit in MAX_LINE (escaping can make text grow six-fold)."""
    msg = Ended(
        job=result.job_id, outcome=result.outcome, status=result.status, signal=result.signal,
        elapsed=result.elapsed,
        stdout=result.stdout.decode("utf-8", "replace"), stderr=result.stderr.decode("utf-8", "replace"),
        stdout_bytes=result.stdout_bytes, stderr_bytes=result.stderr_bytes,
        stdout_truncated=result.stdout_truncated, stderr_truncated=result.stderr_truncated,
        reason=result.reason,
    )
    while True:
        try:
            return encode(msg)
        except ProtocolError:
            msg = dataclasses.replace(
                msg, stdout=msg.stdout[: len(msg.stdout) // 2], stderr=msg.stderr[: len(msg.stderr) // 2],
                stdout_truncated=msg.stdout_truncated or bool(msg.stdout),
                stderr_truncated=msg.stderr_truncated or bool(msg.stderr),
            )


_Handler = Callable[[Any], Awaitable[None]]
"""Takes the message of the type it is registered for."""


class Agent:
    """Serves one controller on `channel` until bye, end of input or `request_stop()`."""

    def __init__(self, channel: Channel, *, slots: int, host: str,
                 kill_grace: float = DEFAULT_KILL_GRACE, clock: Callable[[], float] = time.time) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.slots = slots
        self.host = host
        self.kill_grace = kill_grace
        self._channel = channel
        self._clock = clock
        self._running: dict[str, RunningJob] = {}
        self._reporters: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._output_lost = False
        self._handlers: Dict[type, _Handler] = {
            Run: self._on_run,
            Kill: self._on_kill,
            Ping: self._on_ping,
            Bye: self._on_bye,
        }

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def output_lost(self) -> bool:
        """The controller stopped reading before the agent was done."""
        return self._output_lost

    def request_stop(self) -> None:
        """Stop reading, kill the jobs, report them, return from serve()."""
        self._stop.set()

    async def serve(self) -> None:
        await self._send(encode(Hello(version=PROTOCOL_VERSION, host=self.host, pid=os.getpid(),
                                      clock=self._clock(), slots=self.slots, agent=AGENT_NAME)))
        try:
            await self._read_messages()
        finally:
            await self._shutdown()

    # -- input ------------------------------------------------------------------

    async def _read_messages(self) -> None:
        splitter = LineSplitter()
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                reading = asyncio.ensure_future(self._channel.read_chunk())
                await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    return
                try:
                    chunk = reading.result()
                except OSError as exc:
                    log.error("reading input failed: %s; stopping", exc)
                    return
                if not chunk:
                    log.info("end of input; stopping")
                    last = splitter.flush()
                    if last is not None:
                        await self._handle_line(last)
                    return
                for line in splitter.feed(chunk):
                    await self._handle_line(line)
                    if self._stop.is_set():
                        return
        finally:
            stopped.cancel()

    async def _handle_line(self, line: Union[bytes, LineTooLong]) -> None:
        if isinstance(line, LineTooLong):
            await self._send_error(f"line longer than MAX_LINE ({MAX_LINE} bytes) ignored",
                                   excerpt=_excerpt(line.head) + "...")
            return
        if not line.strip():
            return
        try:
            msg = decode(line)
        except ProtocolError as exc:
            log.info("rejected line: %s", exc.reason)
            await self._send_error(exc.reason, job=exc.job, excerpt=exc.excerpt)
            return
        job = getattr(msg, "job", None)
        handler = self._handlers.get(type(msg))
        if handler is None:
            await self._send_error(f"unexpected {msg.TYPE!r} message: an agent only accepts "
                                   + ", ".join(cls.TYPE for cls in self._handlers), job=job, excerpt=_excerpt(line))
            return
        try:
            await handler(msg)
        except Exception as exc:  # a handler bug must not kill the agent
            log.exception("handling %s failed", msg.TYPE)
            await self._send_error(f"internal error handling {msg.TYPE!r}: {exc}", job=job, excerpt=_excerpt(line))

    # -- handlers -----------------------------------------------------------------

    async def _on_run(self, msg: Run) -> None:
        if msg.job in self._running:
            await self._send_error(f"run: job {msg.job!r} is already running", job=msg.job)
            return
        if len(self._running) >= self.slots:
            await self._send_error(f"run: all {self.slots} slots are busy; job {msg.job!r} refused",
                                   job=msg.job)
            return
        spec = JobSpec(job_id=msg.job, argv=msg.argv, cwd=msg.cwd, env=msg.env, timeout=msg.timeout,
                       output_limit=msg.output_limit, kill_grace=self.kill_grace)
        job = await start_job(spec)
        self._running[msg.job] = job
        log.info("job %s: started pid %s: %s", msg.job, job.pid, " ".join(msg.argv))
        await self._send(encode(Started(job=msg.job, pid=job.pid, clock=job.started_at)))
        reporter = asyncio.ensure_future(self._report(job))
        self._reporters.add(reporter)
        reporter.add_done_callback(self._reporters.discard)

    async def _report(self, job: RunningJob) -> None:
        result = await job.wait()
        del self._running[job.job_id]  # the slot is free before the controller hears of it
        log.info("job %s: %s status=%s signal=%s after %.3f s", job.job_id, result.outcome.value,
                 result.status, result.signal, result.elapsed)
        await self._send(ended_message(result))

    async def _on_kill(self, msg: Kill) -> None:
        job = self._running.get(msg.job)
        if job is None:
            await self._send_error(f"kill: no running job {msg.job!r}", job=msg.job)
        elif not job.done:  # a done job is about to be reported ended anyway
            job.kill()

    async def _on_ping(self, msg: Ping) -> None:
        await self._send(encode(Pong(seq=msg.seq, clock=self._clock(), running=len(self._running))))

    async def _on_bye(self, msg: Bye) -> None:
        log.info("bye; stopping")
        self._stop.set()

    # -- output and shutdown -------------------------------------------------------

    async def _send_error(self, reason: str, *, job: Union[str, None] = None, excerpt: str = "") -> None:
        await self._send(encode(Error(reason=reason, job=job, excerpt=excerpt)))

    async def _send(self, line: bytes) -> None:
        """Write one line; losing the output stream stops the agent."""
        if self._output_lost:
            return
        try:
            await self._channel.write(line)
        except ConnectionError as exc:
            log.error("output lost (%s); killing all jobs and stopping", exc)
            self._output_lost = True
            self._stop.set()

    async def _shutdown(self) -> None:
        if self._running:
            log.info("killing %d running job(s)", len(self._running))
        for job in list(self._running.values()):
            job.kill()
        if self._reporters:
            _, late = await asyncio.wait(set(self._reporters), timeout=self.kill_grace + SHUTDOWN_MARGIN)
            for task in late:
                log.error("a job was not reported ended in time; giving up on it")
                task.cancel()


async def run_agent(claimed: ClaimedStdio, *, slots: int, host: Union[str, None] = None,
                    kill_grace: float = DEFAULT_KILL_GRACE) -> int:
    """Serve the protocol on the claimed stdin/stdout until done.

    Returns the exit status: 0, or 1 if the output was lost (messages dropped).
    """
    channel = await StdioChannel.open(claimed.in_fd, claimed.out_fd)
    agent = Agent(channel, slots=slots, host=host or socket.gethostname(), kill_grace=kill_grace)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, agent.request_stop)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        await agent.serve()
    finally:
        await channel.close()
    return 1 if agent.output_lost else 0
