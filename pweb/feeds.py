"""Where the status page's data comes from: pcontrol's socket and the sched server's socket,
read as an ordinary client of each (the daemons carry no HTTP code).

`ControllerFeed` subscribes to pcontrol's events first, then reads its jobs a page at a time
(`ControllerClient.all_jobs`: one page is one short turn of pcontrol's loop), so the mirror
misses nothing; afterwards it asks for `status` and `hosts` every `poll` seconds, and for one
job's detail when a page shows it. When pcontrol goes away it says so and connects again.

`SchedFeed` asks a running `sched --serve` for `status -json` every `poll` seconds, the same
request a prompt attached to it would type, through the same client (psched.shell.serverlink).
Without a server it says "no scheduler server".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pcontrol.client import ControllerAddress, ControllerClient
from pcontrol.errors import ClientError
from pcontrol.wire import Event, EventKind
from psched.shell.server import ServerPaths
from psched.shell.serverlink import ServerGone, ServerLink
from psched.shell.serverwire import Op, Output, Reply

from .mirror import JobMirror

log = logging.getLogger(__name__)

__all__ = ["ControllerFeed", "SchedFeed", "SchedListener", "StatusListener"]

#: Seconds between `status` / `hosts` polls of pcontrol, and `status -json` of the sched server.
DEFAULT_POLL = 2.0
#: Seconds between attempts to reach a daemon that is not there, at most.
RECONNECT_MAX = 10.0
#: Seconds a request to a daemon may take before the page says it is not answering.
REQUEST_TIMEOUT = 10.0


class StatusListener(Protocol):
    """Told of each `status` answer (None while pcontrol is not reachable)."""

    def status_seen(self, status: dict[str, Any] | None, connected: bool) -> None: ...


class ControllerFeed:
    """Keeps a JobMirror in step with one pcontrol."""

    def __init__(self, address: ControllerAddress, mirror: JobMirror,
                 status_listener: StatusListener, *, poll: float = DEFAULT_POLL,
                 clock: Callable[[], float] = time.time,
                 on_change: Callable[[], None] | None = None):
        self.address = address
        self.mirror = mirror
        self.status_listener = status_listener
        self.poll = poll
        self.clock = clock
        self.on_change = on_change or (lambda: None)
        self.client: ControllerClient | None = None
        self.status: dict[str, Any] | None = None
        self.syncs: list[dict[str, Any]] = []     # `sync runs`: the last synchronized runs
        self.error: str | None = "not connected yet"
        self.loaded = asyncio.Event()           # the first full read is done

    @property
    def connected(self) -> bool:
        return self.client is not None and not self.client.closed and self.loaded.is_set()

    async def run(self) -> None:
        """Forever: connect, read everything, follow events and poll; again when lost."""
        delay = 0.5
        while True:
            try:
                await self._session()
                delay = 0.5
            except ClientError as exc:
                self.error = str(exc)
                log.warning("pcontrol: %s", exc)
            except Exception as exc:     # a record not as expected: say so, start over
                self.error = f"unexpected answer from pcontrol: {exc!r}"
                log.exception("pcontrol: unexpected answer; reconnecting")
            finally:
                if self.client is not None:
                    await self.client.close()
                    self.client = None
                self.status_listener.status_seen(None, False)
                self.on_change()
            await asyncio.sleep(delay)   # backoff between reconnects, not a wait for an event
            delay = min(RECONNECT_MAX, delay * 2)

    async def _session(self) -> None:
        self.client = client = await self.address.connect(on_event=self._on_event)
        await client.subscribe()
        for record in await client.all_jobs(timeout=REQUEST_TIMEOUT):
            self.mirror.take_job(record, self.clock())
        await self._poll_once(client)
        self.error = None
        self.loaded.set()
        self.on_change()
        log.info("pcontrol at %s: %d jobs, %d hosts", self.address, len(self.mirror.jobs),
                 len(self.mirror.hosts))
        while not client.closed:
            try:
                reason = await asyncio.wait_for(client.wait_closed(), self.poll)
            except asyncio.TimeoutError:
                await self._poll_once(client)
                continue
            self.error = reason

    async def _poll_once(self, client: ControllerClient) -> None:
        self.status = await client.call("status", timeout=REQUEST_TIMEOUT)
        self.mirror.take_hosts(await client.call("hosts", timeout=REQUEST_TIMEOUT))
        syncs = await client.request(["sync", "runs"], timeout=REQUEST_TIMEOUT)
        if syncs.ok and isinstance(syncs.data, list):     # a pcontrol older than `sync runs`: none
            self.syncs = syncs.data
        self.status_listener.status_seen(self.status, True)

    def _on_event(self, event: Event) -> None:
        if event.kind is EventKind.JOB and "id" in event.data:
            self.mirror.take_job(event.data, self.clock())
        elif event.kind is EventKind.HOST and "name" in event.data:
            self.mirror.take_host(event.data)
        self.on_change()

    async def job_detail(self, job_id: int) -> dict[str, Any] | None:
        """`check job ID -output` from pcontrol; the mirror's record when pcontrol no longer
        has the job (or cannot be asked); None when neither knows it."""
        client = self.client
        if client is not None and not client.closed:
            reply = await client.request(["check", "job", str(job_id), "-output"],
                                         timeout=REQUEST_TIMEOUT)
            if reply.ok and isinstance(reply.data, dict):
                return reply.data
        return self.mirror.jobs.get(job_id)


class SchedListener(Protocol):
    """Told of each `status -json` summary of the sched server (None while there is none), and of
    the server's name in its pool ("" when it is in none)."""

    def sched_seen(self, summary: dict[str, Any] | None, member: str) -> None: ...


class SchedFeed:
    """The tasks of the sched server of one $SCHED_HOME, when one runs. A standby of a pool
    carries the feed's requests on to the leader (psched.shell.harelay): the page of any member
    shows the leader's tasks, and `member` says which member this page follows."""

    def __init__(self, home: Path, *, poll: float = DEFAULT_POLL,
                 on_change: Callable[[], None] | None = None, listener: SchedListener | None = None):
        self.paths = ServerPaths.for_home(home)
        self.poll = poll
        self.on_change = on_change or (lambda: None)
        self.listener = listener
        self.status: dict[str, Any] | None = None     # `status -json`: tasks and summary
        self.member = ""                              # the server's name in its pool
        self.error: str | None = "no scheduler server"

    def _seen(self) -> None:
        if self.listener is not None:
            self.listener.sched_seen((self.status or {}).get("summary"), self.member)
        self.on_change()

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except (OSError, ValueError, KeyError, TypeError, ServerGone, asyncio.TimeoutError) as exc:
                changed = self.status is not None
                self.status = None
                self.error = (f"no scheduler server at {self.paths.socket}"
                              if isinstance(exc, (FileNotFoundError, ConnectionRefusedError))
                              else f"scheduler server: {exc}")
                if changed:
                    self._seen()
            await asyncio.sleep(self.poll)   # the next look for a server, not a wait for an event

    async def _session(self) -> None:
        link = await asyncio.wait_for(ServerLink.connect(self.paths.socket, _ignore_output), REQUEST_TIMEOUT)
        self.member = link.hello.member
        try:
            while True:
                reply = await self._ask(link, "status -json")
                if reply.ok:
                    status = json.loads(reply.text)
                    await self._add_plans(link, status)
                    self.status = status
                    self.error = None
                else:
                    self.status = None
                    self.error = f"scheduler server: {reply.text}"
                self._seen()
                await asyncio.sleep(self.poll)   # the poll interval itself
        finally:
            link.close()

    @staticmethod
    async def _ask(link: ServerLink, script: str) -> Reply:
        """One read-only command evaluated in the server (as an attached prompt would)."""
        reply = await asyncio.wait_for(link.request(Op.EVAL, script), REQUEST_TIMEOUT)
        if reply.leaving:
            raise ConnectionResetError("the scheduler server is stopping")
        return reply

    async def _add_plans(self, link: ServerLink, status: dict[str, Any]) -> None:
        """Each `rounds` task's plan of its current window (`check NAME -plan`), as `plan`."""
        described = await self._ask(link, "tasks -json")
        if not described.ok:
            return
        rounds = {t["name"] for t in json.loads(described.text) if t.get("rounds") is not None}
        for row in status.get("tasks", []):
            if row.get("task") in rounds:
                plan = await self._ask(link, f"check {{{row['task']}}} -plan")
                if plan.ok:
                    row["plan"] = plan.text.splitlines()


def _ignore_output(output: Output) -> None:
    """What the server writes between replies (exit macros' output) is not the page's."""
