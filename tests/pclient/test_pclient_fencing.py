"""Fencing tokens at the agents (pclient.fencing), with real agent processes: a takeover by a
higher token is accepted, and from then on the old controller's requests are refused; a
controller with a lower token is refused at `auth`; a survivor refuses a lower successor."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from pclient.fencing import FenceFloor, refusal
from pclient.lease import SurvivorLink, survivor_key
from pclient.protocol import Ack, Auth, Ended, Error, Kill, Outcome, Resumed, Run, Started
from agent_harness import AgentProcess, alive, async_test
from waiting import wait_until

TOKEN = "5e" * 32


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="pcf")
    os.chmod(directory, 0o700)
    yield dict(os.environ, PCLIENT_RUNTIME_DIR=directory)
    shutil.rmtree(directory, ignore_errors=True)


def gated(gate: Path, then: str) -> tuple[str, ...]:
    return ("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.01; done; {then}")


async def agent_with(env: dict[str, str], fence: int | None) -> tuple[AgentProcess, object]:
    agent = await AgentProcess.start("--slots", "4", env=env)
    await agent.recv()  # hello
    await agent.send(Auth(token=TOKEN, name="n1", fence=fence))
    return agent, await agent.recv()


def floor(env: dict[str, str]) -> int:
    return FenceFloor.of(survivor_key(TOKEN, "n1"), Path(env["PCLIENT_RUNTIME_DIR"])).current()


def test_refusal_wording():
    assert refusal(5, 0) is None and refusal(None, 0) is None and refusal(7, 7) is None
    assert refusal(5, 7) == "fenced: token 5 is lower than 7, which has taken over this host"
    assert "no fencing token" in refusal(None, 7)


def test_the_floor_only_rises(tmp_path):
    fence = FenceFloor(tmp_path / "k.fence")
    assert fence.current() == 0
    assert fence.raise_to(12) == 12 and fence.raise_to(9) == 12 and fence.current() == 12
    assert fence.raise_to(100) == 100 and (tmp_path / "k.fence").read_text() == "100"


@async_test
async def test_a_higher_token_takes_over_and_the_old_controller_is_refused(env, tmp_path):
    old, resumed = await agent_with(env, fence=5)
    assert isinstance(resumed, Resumed) and floor(env) == 5
    await old.send(Run(job="j1", argv=gated(tmp_path / "g", "echo done")))
    started = await old.recv_type(Started)

    # the old leader's controller is cut off (its agent keeps running: no bye, no EOF yet); the
    # new leader's agent authenticates with a higher token on the same host
    new, _ = await agent_with(env, fence=9)
    assert floor(env) == 9
    await old.send(Run(job="late", argv=("true",)))          # a late request of the old leader
    error = await old.recv_type(Error)
    assert error.reason == "fenced: token 5 is lower than 9, which has taken over this host"
    assert error.job == "late"
    await old.send(Kill(job="j1"))
    assert (await old.recv_type(Error)).reason.startswith("fenced: token 5")
    assert alive(started.pid)                                # nothing the old leader asked was done

    # the old controller's connection ends: its agent survives, and the new agent takes over
    await old.close_stdin()
    await wait_until(lambda: list(Path(env["PCLIENT_RUNTIME_DIR"]).glob("*.sock")), "the survivor listens", 10)
    await new.send(Run(job="j2", argv=("true",)))            # the new leader acts
    assert (await new.recv_type(Started)).job == "j2"
    assert (await new.recv_type(Ended)).job == "j2"
    new2, taken = await agent_with(env, fence=9)             # a second agent of the new leader finds the survivor
    assert isinstance(taken, Resumed) and taken.running == ("j1",)
    (tmp_path / "g").touch()
    ended = await new2.recv_type(Ended)
    assert (ended.job, ended.outcome, ended.stdout) == ("j1", Outcome.EXIT, "done\n")  # its true outcome
    await new2.send(Ack(jobs=("j1",)))
    assert await old.wait_exit() == 0
    await new.finish()
    await new2.finish()


@async_test
async def test_a_lower_token_is_refused_at_auth_and_by_a_survivor(env, tmp_path):
    leader, _ = await agent_with(env, fence=20)
    await leader.send(Run(job="j", argv=gated(tmp_path / "g", "true")))
    await leader.recv_type(Started)
    stale, answer = await agent_with(env, fence=11)          # the old leader's controller starts an agent
    assert isinstance(answer, Error) and answer.reason == "fenced: token 11 is lower than 20, which has taken over this host"
    assert await stale.wait_exit() == 0                      # it runs nothing and leaves
    nofence, answer = await agent_with(env, fence=None)
    assert isinstance(answer, Error) and "no fencing token" in answer.reason
    await nofence.wait_exit()

    await leader.close_stdin()                               # the leader's controller goes: a survivor
    await wait_until(lambda: list(Path(env["PCLIENT_RUNTIME_DIR"]).glob("*.sock")), "the survivor listens", 10)
    path = next(Path(env["PCLIENT_RUNTIME_DIR"]).glob("*.sock"))
    with pytest.raises(PermissionError, match="fencing token 11 is lower than 20"):
        await SurvivorLink.connect(path, TOKEN, fence=11)
    heir, taken = await agent_with(env, fence=21)
    assert isinstance(taken, Resumed) and taken.running == ("j",)
    (tmp_path / "g").touch()
    ended = await heir.recv_type(Ended)
    await heir.send(Ack(jobs=(ended.job,)))
    assert await leader.wait_exit() == 0
    await heir.finish()
