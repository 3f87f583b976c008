"""Helpers for pcontrol tests: an in-process controller served on its real Unix socket, a
client subscribed to its events, helpers that wait on those events (never on the clock),
and the fake ssh script.

The venv has no pytest-asyncio: async tests are plain functions that call `run(coro)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcontrol.client import ControllerClient
from pcontrol.controller import Controller, ControllerConfig
from pcontrol.journal import Journal
from pcontrol.paths import Paths
from pcontrol.secret import load_or_create_secret
from pcontrol.server import ControlServer
from pcontrol.wire import Event, EventKind
from waiting import wait_until

#: The exact command that starts a local agent (what -connect gets for extra local hosts).
LOCAL_AGENT = f"{shlex.quote(sys.executable)} -m pclient"
WAIT = 15.0     # upper bound for any single wait; tests normally finish far sooner


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def make_config(**overrides: Any) -> ControllerConfig:
    # A short lease: an agent left behind by a failing test ends itself soon.
    values: dict[str, Any] = dict(heartbeat=0.2, connect_timeout=10.0, retry_min=60.0,
                                  retry_max=120.0, retention=60.0, bye_grace=3.0, lease=20.0)
    values.update(overrides)
    return ControllerConfig(**values)


@dataclass
class EventLog:
    """Every event the test client received, and a way to wait for one."""

    events: list[Event] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def collect(self, client: ControllerClient) -> None:
        async for event in client.events():
            async with self.changed:
                self.events.append(event)
                self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = WAIT,
                       what: str = "an event") -> Event:
        async def scan() -> Event:
            seen = 0
            async with self.changed:
                while True:
                    for event in self.events[seen:]:
                        if predicate(event):
                            return event
                    seen = len(self.events)
                    await self.changed.wait()
        try:
            return await asyncio.wait_for(scan(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                 f"events: {[(e.kind.value, e.data.get('id') or e.data.get('name'), e.data.get('state')) for e in self.events][-20:]}") from None

    def job_states(self, job_id: int) -> list[str]:
        return [e.data["state"] for e in self.events
                if e.kind is EventKind.JOB and e.data.get("id") == job_id]


@dataclass
class Harness:
    paths: Paths
    controller: Controller
    server: ControlServer
    client: ControllerClient
    log: EventLog

    async def cmd(self, *argv: Any) -> Any:
        return await self.client.call(*[str(a) for a in argv])

    async def reply(self, *argv: Any) -> Any:
        return await self.client.request([str(a) for a in argv])

    async def submit(self, *argv: Any) -> int:
        return (await self.cmd("job", *argv))["id"]

    async def wait_job(self, job_id: int, state: str = "DONE",
                       timeout: float = WAIT) -> dict[str, Any]:
        event = await self.log.wait_for(
            lambda e: e.kind is EventKind.JOB and e.data.get("id") == job_id
            and e.data["state"] == state, timeout, f"job {job_id} {state}")
        return event.data

    async def wait_started(self, job_id: int, timeout: float = WAIT) -> dict[str, Any]:
        event = await self.log.wait_for(
            lambda e: e.kind is EventKind.JOB and e.data.get("id") == job_id
            and e.data.get("pid") is not None, timeout, f"job {job_id} started")
        return event.data

    async def wait_host(self, name: str, state: str, timeout: float = WAIT,
                        after: int = 0) -> dict[str, Any]:
        """Wait for a host event with `state`, among events from index `after` on."""
        start_seq = self.log.events[after - 1].seq if after else 0
        event = await self.log.wait_for(
            lambda e: e.kind is EventKind.HOST and e.data.get("name") == name
            and e.data["state"] == state and e.seq > start_seq, timeout,
            f"host {name} {state}")
        return event.data

    async def add_local(self, name: str, slots: int = 1) -> dict[str, Any]:
        """A local host: `localhost` itself, or any name with -connect to a local agent."""
        argv = ["host", "add", name, "-slots", slots]
        if name != "localhost":
            argv += ["-connect", LOCAL_AGENT]
        await self.cmd(*argv)
        return await self.wait_host(name, "IDLE")


@contextlib.asynccontextmanager
async def controller_running(home: str, config: ControllerConfig | None = None,
                             owner: str | None = None, *,
                             stop_kill: bool = True) -> AsyncIterator[Harness]:
    """A controller on `home` with its secret. At the end it stops with -kill (no agent
    outlives the test) unless `stop_kill` is False or the test set kill_on_stop itself."""
    paths = Paths.for_home(home)
    paths.ensure_home()
    journal = Journal(paths.journal)
    controller = Controller(journal, config or make_config(),
                            secret=load_or_create_secret(home))
    controller.kill_on_stop = stop_kill
    server = ControlServer(controller, paths.socket)
    await controller.start()
    await server.start()
    client = await ControllerClient.connect(home)
    log = EventLog()
    collector = asyncio.get_running_loop().create_task(log.collect(client))
    await client.subscribe(owner)
    harness = Harness(paths, controller, server, client, log)
    try:
        yield harness
    finally:
        await client.close()
        collector.cancel()
        await server.close()
        await controller.stop()
        journal.close()


def kill_group(pid: int | None) -> None:
    """Clean up after a test that left a job's process group running."""
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


FAKE_SSH = r"""#!/bin/sh
# A fake ssh for tests: behaves according to the host name it is given.
# Called as: ssh -o BatchMode=yes NAME REMOTE-COMMAND (pcontrol.bootstrap's, or
# `pclient [--slots N]` with config.remote_agent), run by sh as sshd runs it.
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-p|-i|-l) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
host="$1"; shift
case "$host" in
  pw)        printf "user@pw's password: "; read answer ;;
  newkey)    echo "The authenticity of host 'newkey (10.0.0.9)' can't be established."
             printf "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
             read answer ;;
  changed)   echo "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@" >&2
             echo "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @" >&2
             echo "Host key verification failed." >&2; exit 255 ;;
  changedpw) echo "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@" >&2
             echo "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @" >&2
             echo "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@" >&2
             echo "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!" >&2
             echo "Offending ECDSA key in /home/u/.ssh/known_hosts:3" >&2
             echo "Password authentication is disabled to avoid man-in-the-middle attacks." >&2
             echo "Keyboard-interactive authentication is disabled to avoid man-in-the-middle attacks." >&2
             echo "UpdateHostkeys is disabled because the host key is not trusted." >&2
             echo "u@changedpw: Permission denied (publickey,password)." >&2; exit 255 ;;
  unknownkey) echo "No ED25519 host key is known for unknownkey and you have requested strict checking." >&2
             echo "Host key verification failed." >&2; exit 255 ;;
  idfile)    echo "Warning: Identity file /home/u/.ssh/id_gone not accessible: No such file or directory." >&2
             echo "u@idfile: Permission denied (publickey)." >&2; exit 255 ;;
  dns)       echo "ssh: Could not resolve hostname dns: Temporary failure in name resolution" >&2; exit 255 ;;
  reset)     echo "kex_exchange_identification: read: Connection reset by peer" >&2
             echo "Connection reset by 10.0.0.7 port 22" >&2; exit 255 ;;
  denied)    echo "user@denied: Permission denied (publickey,password)." >&2; exit 255 ;;
  refused)   echo "ssh: connect to host refused port 22: Connection refused" >&2; exit 255 ;;
  noroute)   echo "ssh: connect to host noroute port 22: No route to host" >&2; exit 255 ;;
  noname)    echo "ssh: Could not resolve hostname noname: Name or service not known" >&2
             exit 255 ;;
  nopclient) case "$1" in
               pclient*) echo "bash: line 1: pclient: command not found" >&2; exit 127 ;;
               *) exec sh -c "$*" ;;
             esac ;;
  nopython)  exec env PATH=/nonexistent /bin/sh -c "$*" ;;
  silent)    exec sleep 60 ;;
  quits)     exit 1 ;;
  works)     exec sh -c "$*" ;;
  *)         echo "fake ssh: unknown test host $host" >&2; exit 255 ;;
esac
"""


#: A stand-in for ssh (tests/tools/relay.py): killing it cuts the connection while the
#: agent lives on (it sees end of input), as killing ssh does to a remote pclient.
RELAY_SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "relay.py"


def relay_connect(*agent_args: str) -> str:
    """A -connect command that starts a local agent through the relay."""
    return f"{LOCAL_AGENT_PY} {shlex.quote(str(RELAY_SCRIPT))} --no-stderr {LOCAL_AGENT} " + " ".join(
        shlex.quote(a) for a in agent_args)


LOCAL_AGENT_PY = shlex.quote(sys.executable)


async def poll(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait, bounded, for state nobody can tell us about (a process gone, a file there)."""
    await wait_until(condition, what, timeout)


def write_older_pclient(target: Path, version: str = "0.2.9") -> Path:
    """A copy of pclient in `target`/pclient that calls itself `version` (so its build
    differs from pcontrol's own), as a pip install of an older pclient would be; run it
    with PYTHONPATH=`target` python3 -m pclient."""
    import shutil

    import pclient
    shutil.copytree(Path(pclient.__file__).parent, target / "pclient",
                    ignore=shutil.ignore_patterns("__pycache__"))
    protocol = target / "pclient" / "protocol.py"     # where the version is declared
    source = protocol.read_text()
    assert 'AGENT_VERSION = "' in source
    protocol.write_text(source.replace('AGENT_VERSION = "', f'AGENT_VERSION = "{version}"  # was "', 1))
    return target
