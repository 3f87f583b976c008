"""The agent's half of a synchronized run: jobs made ready at a gate, started at an instant.

    controller --prepare--> SyncStarter: start_job(gate + argv)   (forked, held at the gate)
    controller <--ready---  the gate connected to our socket
    controller ---go------> each gate gets its instant (the controller's instant + offset)
    controller <--launched- the gate's note of the real start, just before its exec
    controller <--ended---  as for any job (the agent's ended_message)

Each prepared job runs under jobproc like any other (so kill, timeouts of the kill grace,
output capture and the /proc sweep all apply), with the gate program (pclient.syncgate)
in front of its own. The gates talk to one Unix socket of this agent, in a private directory made on
the first `prepare`. Sync jobs do not take the agent's slots: a sync run is asked for
explicitly, by an operator, for the hosts it names.

The agent hands in how to send a message and how to report a finished job (its
`ended_message`), so this module knows nothing of channels or survival.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Dict, Union

from .containment import remove_stale
from .jobproc import DEFAULT_KILL_GRACE, JobResult, JobSpec, RunningJob, start_job
from .protocol import Go, Launched, Message, Prepare, Ready
from .syncgate import GATE_PROGRAM

__all__ = ["SyncStarter"]

log = logging.getLogger(__name__)

_PREFIX = "pclient-sync-"
"""This agent's gate directory in the temporary directory: pclient-sync-<pid>-XXXX (removed when
the agent stops; one left by an agent killed -9 goes when the next agent makes its own)."""
_GATE = "gate"


@dataclass
class _Prepared:
    job: RunningJob
    gate: Union[asyncio.StreamWriter, None] = None
    reader: Union[asyncio.StreamReader, None] = None
    instant: Union[float, None] = None
    waiters: list = field(default_factory=list)


Send = Callable[[Message], Awaitable[None]]
ReportEnd = Callable[[JobResult], Awaitable[None]]


class SyncStarter:
    """Prepared and started sync jobs of one agent, by job id."""

    def __init__(self, send: Send, report_end: ReportEnd, *, kill_grace: float = DEFAULT_KILL_GRACE,
                 clock: Callable[[], float] = time.time) -> None:
        self._send = send
        self._report_end = report_end
        self._kill_grace = kill_grace
        self._clock = clock
        self._jobs: Dict[str, _Prepared] = {}
        self._dir: Union[str, None] = None
        self._server: Union[asyncio.AbstractServer, None] = None
        self._tasks: set[asyncio.Task[None]] = set()

    def owns(self, job_id: str) -> bool:
        return job_id in self._jobs

    @property
    def running(self) -> int:
        return len(self._jobs)

    # -- prepare ------------------------------------------------------------------------

    async def prepare(self, msg: Prepare, env: Dict[str, str]) -> Union[str, None]:
        """Fork the job held at its gate; an error text if it cannot even be tried."""
        if msg.job in self._jobs:
            return f"prepare: job {msg.job!r} is already prepared or running"
        path = await self._socket()
        argv = [sys.executable, "-I", "-c", GATE_PROGRAM, path, msg.job, *msg.argv]
        spec = JobSpec(job_id=msg.job, argv=argv, cwd=msg.cwd, env=env, timeout=None,
                       output_limit=msg.output_limit, kill_grace=self._kill_grace)
        job = await start_job(spec)
        self._jobs[msg.job] = _Prepared(job)
        log.info("sync job %s: forked pid %s at its gate: %s", msg.job, job.pid, " ".join(msg.argv))
        self._spawn(self._follow(msg.job, job))
        return None

    async def _socket(self) -> str:
        if self._server is None:
            remove_stale(tempfile.gettempdir(), _PREFIX, "-", spare=_GATE)   # agents killed -9
            self._dir = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
            self._server = await asyncio.start_unix_server(self._gate_connected, os.path.join(self._dir, _GATE))
        assert self._dir is not None
        return os.path.join(self._dir, _GATE)

    async def _gate_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        job_id = line.decode("utf-8", "replace").strip()
        entry = self._jobs.get(job_id)
        if entry is None or entry.gate is not None:
            writer.close()
            return
        entry.gate, entry.reader = writer, reader
        await self._send(Ready(job=job_id, pid=entry.job.pid or 0, clock=entry.job.started_at))

    # -- go ---------------------------------------------------------------------------

    async def go(self, msg: Go) -> list[tuple[str, str]]:
        """Give each named gate its instant (ours: the controller's `at` + `offset`).
        Returns (job, reason) for the jobs that could not be started."""
        local = msg.at + msg.offset
        refused = []
        for job_id in msg.jobs:
            entry = self._jobs.get(job_id)
            if entry is None:
                refused.append((job_id, f"go: no prepared job {job_id!r}"))
            elif entry.gate is None:
                refused.append((job_id, f"go: job {job_id!r} is not ready at its gate"))
            elif entry.instant is not None:
                refused.append((job_id, f"go: job {job_id!r} has already been started"))
            else:
                entry.instant = local
                entry.gate.write(f"{local!r}\n".encode("ascii"))
        for job_id in msg.jobs:
            entry = self._jobs.get(job_id)
            if entry is not None and entry.instant == local and entry.reader is not None:
                self._spawn(self._await_launch(job_id, entry))
        return refused

    async def _await_launch(self, job_id: str, entry: _Prepared) -> None:
        assert entry.reader is not None and entry.instant is not None
        try:
            line = await entry.reader.readline()
            started = float(line)
        except (OSError, ValueError):
            return              # the gate died before its start: its `ended` says how
        await self._send(Launched(job=job_id, clock=started, late=max(0.0, started - entry.instant)))

    # -- ends ---------------------------------------------------------------------------

    async def _follow(self, job_id: str, job: RunningJob) -> None:
        result = await job.wait()
        entry = self._jobs.pop(job_id, None)
        if entry is not None and entry.gate is not None:
            entry.gate.close()
        log.info("sync job %s: %s status=%s after %.3f s", job_id, result.outcome.value,
                 result.status, result.elapsed)
        await self._report_end(result)

    def kill(self, job_id: str) -> bool:
        """Kill a sync job (at its gate or running); False if it is not one of ours."""
        entry = self._jobs.get(job_id)
        if entry is None:
            return False
        if not entry.job.done:
            entry.job.kill()
        return True

    def kill_all(self) -> None:
        for entry in list(self._jobs.values()):
            if not entry.job.done:
                entry.job.kill()

    async def close(self) -> None:
        """Kill every sync job, wait for their reports (bounded), remove the socket."""
        self.kill_all()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._kill_grace + 10.0)
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
