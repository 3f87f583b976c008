"""Running a synchronized run through pcontrol, for `syncrun`, for tasks, and for --netjobs.

    result = await run_sync(link, sync_def)      # pcontrol's `sync run`; its result dict
    SyncBackend(sched)                           # the backend of a task's `sync NAME` jobs

A run is a single request on a connection of its own (the scheduler's connection keeps
carrying its jobs and events meanwhile), answered when the whole run is over. The link
(psched.scheduler.remote) is connected first, which starts the embedded pcontrol if need be.

A task's `sync NAME` job is the whole run: it starts when the request is sent and ends
with EXIT 0 when the verdict is success, EXIT 1 otherwise (also when the run could not be
tried: an unknown sync or host, no controller), its stdout the result table, and the result
as a Tcl dict in $sync_result of its task.exit macro. A run's log goes to the block's -log
directory, one timestamped file per run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pcontrol.errors import ClientError

from .eventloop import get_loop
from .jobs import Job, JobSink, Outcome
from .syncdefs import SyncDef, result_dict, write_run_log

if TYPE_CHECKING:
    from .remote import ControllerLink

log = logging.getLogger(__name__)

__all__ = ["SyncBackend", "SyncFailed", "run_sync", "log_run"]


class SyncFailed(Exception):
    """The run could not be tried at all (pcontrol refused it, or could not be reached)."""


async def run_sync(link: "ControllerLink", sync: SyncDef, *, sequential: bool = False) -> dict[str, Any]:
    """Ask pcontrol for the run and wait for it to be over; the result dict."""
    spec = sync.to_spec()
    spec["sequential"] = sequential
    try:
        await link.connect()
        client = await link.address.connect()
    except (ClientError, OSError) as exc:
        raise SyncFailed(f"sync {sync.name}: no controller: {exc}") from None
    try:
        reply = await client.request(["sync", "run", json.dumps(spec), "-quiet"], timeout=None)
    except ClientError as exc:
        raise SyncFailed(f"sync {sync.name}: {exc}") from None
    finally:
        await client.close()
    if not reply.ok:
        raise SyncFailed(reply.text if reply.text.startswith("sync ") else f"sync {sync.name}: {reply.text}")
    return reply.data


def log_run(sync: SyncDef, result: dict[str, Any], directory: str | None = None) -> str | None:
    """Write the run's log file (to `directory`, else the block's -log); its path, if any."""
    where = directory or sync.log_dir
    if not where:
        return None
    from pcontrol.syncspec import result_text  # with the first sync run (start-up, issue 13)

    return write_run_log(where, sync.name, result_text(result, output=True))


class SyncBackend:
    """Jobs of tasks with a `sync NAME` directive: each job is one run (a Backend; it reports
    to a JobSink). It is handed where the sync definitions are and the controller link."""

    home: Path | None = None      # runs are not counted across restarts

    def __init__(self, sched: JobSink, defs: Callable[[], dict[str, SyncDef]],
                 link: Callable[[], "ControllerLink"]):
        self.sched = sched
        self._defs = defs
        self._link = link
        self.running: dict[int, asyncio.Task] = {}
        """The runs under way, by job id (each a request to pcontrol)."""

    def submit(self, job: Job) -> None:
        self.running[job.id] = get_loop().create_task(self._run(job))

    async def _run(self, job: Job) -> None:
        sched = self.sched
        sync = self._defs().get(job.sync or "")
        sched.job_started(job, ran_on="sync")
        t0 = time.monotonic()
        try:
            if sync is None:
                raise SyncFailed(f"no sync block named {job.sync!r} is defined")
            result = await run_sync(self._link(), sync)
        except SyncFailed as exc:
            sched.job_ended(job, Outcome.EXIT, status=1, stderr=f"{exc}\n", reason=str(exc),
                            elapsed=time.monotonic() - t0, ran_on="sync")
            return
        finally:
            self.running.pop(job.id, None)
        from pcontrol.syncspec import result_text  # with the first sync run (start-up, issue 13)

        text = result_text(result)
        try:
            path = log_run(sync, result)
        except OSError as exc:
            sched.report(f"sync {sync.name}: cannot write its log: {exc}")
            path = None
        job.vars["sync_result"] = result_dict(result)
        ok = result["verdict"] == "success"
        sched.job_ended(job, Outcome.EXIT, status=0 if ok else 1, stdout=text + "\n",
                        stderr="" if ok else f"sync {sync.name} failed: {result['reason']}\n",
                        reason="" if ok else result["reason"], elapsed=time.monotonic() - t0,
                        ran_on="sync" + (f" (log {path})" if path else ""))

    def kill(self, job: Job) -> bool:
        """Ask pcontrol to end the run (`sync kill NAME`): its targets end KILLED and the
        job ends with the failed verdict, EXIT 1."""
        if job.id not in self.running or job.sync is None:
            return False
        link = self._link()
        if link.client is None:
            return False
        get_loop().create_task(self._kill(link, job.sync))
        return True

    async def _kill(self, link: "ControllerLink", name: str) -> None:
        try:
            reply = await link.client.request(["sync", "kill", name])
        except ClientError as exc:
            self.sched.report(f"sync {name}: could not kill it: {exc}")
            return
        if not reply.ok:
            self.sched.report(f"sync {name}: could not kill it: {reply.text}")

    def task_defined(self, task: str) -> None:
        pass

    def lead(self, host: str) -> float:
        return 0.0

    async def connect(self) -> None:
        pass

    async def aclose(self) -> None:
        """sched is leaving: stop waiting for the runs (they end at pcontrol by themselves)."""
        for task in list(self.running.values()):
            task.cancel()
        if self.running:
            await asyncio.gather(*self.running.values(), return_exceptions=True)

    def jobs_out(self) -> int:
        return len(self.running)
