"""The spool sweep, agent side: asked by its controller (`sweep`), the agent lists the spooled
jobs of the controller's part that it cannot account for (`spooled`), and removes by itself only
what no controller can ask for: a dead agent's unfinished files, and (when the controller allows)
another controller's part that no live agent holds and nothing has touched for long."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from spoolfiles import HOUR, ORPHAN, dead_pid, plant
from agent_harness import AgentProcess, async_test, start_agent
from pclient.lease import AgentPresence, survivor_key
from pclient.protocol import (SWEEP_VERSION, Ack, Auth, Drop, Ended, Error, Resumed, Run, Spooled, Started, Sweep,
                             encode)

TOKEN = os.urandom(32).hex()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Agents with a spool of their own and a fresh socket directory (liveness marks)."""
    runtime = tempfile.mkdtemp(dir="/tmp", prefix="pcs")
    os.chmod(runtime, 0o700)
    yield dict(os.environ, PCLIENT_RUNTIME_DIR=runtime, PCLIENT_SPOOL_DIR=str(tmp_path / "spool"))
    shutil.rmtree(runtime, ignore_errors=True)




async def authed(env: dict[str, str], name: str = "n1") -> AgentProcess:
    agent, hello = await start_agent("--slots", "4", env=env)
    assert hello.sweep == SWEEP_VERSION
    await agent.send(Auth(token=TOKEN, name=name))
    await agent.recv_type(Resumed)
    return agent


@async_test
async def test_the_agent_lists_only_what_it_cannot_account_for_and_removes_only_the_dead(env, tmp_path):
    spool = Path(env["PCLIENT_SPOOL_DIR"])
    mine = spool / survivor_key(TOKEN, "n1")
    orphan = [plant(mine / "5.stdout"), plant(mine / "5.stderr")]
    young = plant(mine / "6.stdout", age=60)                       # unknown, but touched recently
    dead = dead_pid()
    dead_part = plant(mine / f".9.stdout.pclient-{dead}-1.part")   # a killed agent's running job
    live_part = plant(mine / f".10.stdout.pclient-{os.getpid()}-1.part")
    stranger = plant(mine / "notes.txt")                          # not a spool file: never touched
    gone = spool / "0123456789abcdef"                              # a controller that is gone
    plant(gone / "1.stdout", b"y" * 1000, age=40 * 86400)
    plant(gone / f".2.stderr.pclient-{dead}-3.part", age=40 * 86400)
    os.utime(gone, (time.time() - 40 * 86400,) * 2)
    recent = plant(spool / "fedcba9876543210" / "1.stdout", age=2 * 86400)   # gone 2 days only
    held_token = os.urandom(8).hex()
    held_key = survivor_key(held_token, "n1")
    held = plant(spool / held_key / "1.stdout", age=40 * 86400)     # its agent lives
    os.utime(held.parent, (time.time() - 40 * 86400,) * 2)
    anonymous = plant(spool / f"agent-{dead}" / "3.stdout", age=40 * 86400)
    os.utime(anonymous.parent, (time.time() - 40 * 86400,) * 2)
    presence = AgentPresence(held_token, "n1", directory=Path(env["PCLIENT_RUNTIME_DIR"]))
    presence.claim()
    agent = await authed(env)
    try:
        gate = tmp_path / "gate"
        await agent.send(Run(job="20", argv=("sh", "-c", f"echo run; while [ ! -e {gate} ]; do sleep 0.01; done"),
                             spool=True))
        await agent.recv_type(Started)
        await agent.send(Run(job="21", argv=("echo", "fin"), spool=True))
        await agent.recv_type(Started)
        assert (await agent.recv_type(Ended)).spooled               # not acked: its outcome is the agent's
        for job in ("21",):
            for stream in ("stdout", "stderr"):
                path = mine / f"{job}.{stream}"
                os.utime(path, (time.time() - 2 * HOUR,) * 2)
        await agent.send(Sweep(seq=1, age=HOUR, abandon=30 * 86400.0))
        swept = await agent.recv_type(Spooled)
        assert swept.seq == 1 and swept.jobs == ("5",) and not swept.shared, swept
        assert swept.files == 4 and swept.parts == ("0123456789abcdef", f"agent-{dead}"), swept
        assert swept.bytes == 3 * len(ORPHAN) + 1000, swept
        assert all(p.exists() for p in (*orphan, young, live_part, stranger, recent, held))
        assert not dead_part.exists() and not gone.exists() and not anonymous.parent.exists()
        assert any(p.name.startswith(".20.stdout.pclient-") for p in mine.iterdir())   # the running job's
        await agent.send(Drop(job="5"))                              # what the controller answers
        await agent.send(Ack(jobs=("21",)))
        await agent.send(Sweep(seq=2, age=HOUR))
        again = await agent.recv_type(Spooled)
        assert again == Spooled(seq=2, jobs=("21",)), again          # acked: the controller's to judge now
        assert not any(p.exists() for p in orphan)
        gate.touch()
        assert (await agent.recv_type(Ended)).spooled
    finally:
        presence.release()
        await agent.finish()


@async_test
async def test_another_live_agent_of_the_key_keeps_every_job_listed_out(env):
    mine = Path(env["PCLIENT_SPOOL_DIR"]) / survivor_key(TOKEN, "n1")
    orphan = plant(mine / "5.stdout")
    first = await authed(env)
    second = await authed(env)       # (the first is connected, not a survivor: not taken over)
    try:
        await second.send(Sweep(seq=1, age=HOUR))
        assert await second.recv_type(Spooled) == Spooled(seq=1, shared=True)
        assert orphan.exists()
    finally:
        await second.finish()
    await first.send(Sweep(seq=2, age=HOUR))
    assert await first.recv_type(Spooled) == Spooled(seq=2, jobs=("5",))
    await first.finish()


@async_test
async def test_an_agent_sweeps_nothing_unasked_and_refuses_a_sweep_without_auth(env):
    """An older controller never sends `sweep`: the spool stays as it was, as before."""
    mine = Path(env["PCLIENT_SPOOL_DIR"]) / survivor_key(TOKEN, "n1")
    orphan = plant(mine / "5.stdout")
    agent = await authed(env)
    await agent.send(Run(job="1", argv=("true",), spool=True))
    await agent.recv_type(Started)
    await agent.recv_type(Ended)
    await agent.finish()
    assert orphan.exists()
    bare, _ = await start_agent("--slots", "1", env=env)
    await bare.send(encode(Sweep(seq=1, age=0.0)))
    refused = await bare.recv_type(Error)
    assert "not authenticated" in refused.reason
    await bare.finish()
    assert orphan.exists()


@async_test
async def test_an_agent_never_authenticated_takes_its_spool_along_as_it_exits(env):
    """Its part is named by its pid (a version 1 controller's agent): nobody can read it after."""
    spool = Path(env["PCLIENT_SPOOL_DIR"])
    agent, hello = await start_agent("--slots", "1", env=env)
    await agent.send(Run(job="1", argv=("echo", "hi"), spool=True))
    await agent.recv_type(Started)
    assert (await agent.recv_type(Ended)).spooled
    assert (spool / f"agent-{hello.pid}" / "1.stdout").read_bytes() == b"hi\n"
    await agent.finish()
    assert list(spool.iterdir()) == []


def test_a_part_named_with_a_pid_no_process_can_have_is_swept_not_a_crash(tmp_path):
    # (`agent-9999999999`: past the largest pid; os.kill raised OverflowError and the sweep failed)
    from pclient.spool import Spool

    part = plant(tmp_path / "agent-9999999999" / "1.stdout", age=40 * 86400).parent
    os.utime(part, (time.time() - 40 * 86400,) * 2)          # the folder as old as its file
    swept = Spool(tmp_path).sweep("0123456789abcdef", accounted=set(), sole=True, age=HOUR,
                                  abandon=30 * 86400.0, live=lambda key: set())
    assert swept.parts == ["agent-9999999999"] and swept.files == 1
