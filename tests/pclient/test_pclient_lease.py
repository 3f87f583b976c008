"""The agent's lease: it survives its controller, a successor takes its jobs over (and only
with the right token), and a lease that runs out ends the jobs leaving no process behind.
A successor told of held jobs keeps looking: it takes over a survivor that appears late,
and reports lost the jobs no live agent can have (agents mark themselves alive with a lock)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from pclient.lease import SurvivorLink, SurvivorListener, find_survivors, live_agents, runtime_dir, survivor_key
from pclient.protocol import (Ack, Auth, Bye, Ended, Error, Kill, Lost, Message, Outcome, Ping, Pong, Resumed, Run,
                             Started, encode)
from agent_harness import PY, REPO, AgentProcess, alive, async_test
from waiting import wait_until

TOKEN = os.urandom(32).hex()  # (its own: _token_processes looks at every process of the machine)
WAIT = 10.0


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    """An environment whose agents keep their sockets in a fresh, short directory."""
    directory = tempfile.mkdtemp(dir="/tmp", prefix="pcl")
    os.chmod(directory, 0o700)
    yield dict(os.environ, PCLIENT_RUNTIME_DIR=directory)
    shutil.rmtree(directory, ignore_errors=True)


async def poll(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait until `condition()` holds (state we cannot be told about), bounded."""
    await wait_until(condition, what, timeout)

def sockets(env: dict[str, str], name: str = "n1", token: str = TOKEN) -> list[Path]:
    return sorted(Path(env["PCLIENT_RUNTIME_DIR"]).glob(f"{survivor_key(token, name)}-*.sock"))


def gated(gate: Path, then: str) -> tuple[str, ...]:
    """A job that waits for `gate` to exist (the test decides when it ends), then runs `then`."""
    return ("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.01; done; {then}")


async def authed_agent(env: dict[str, str], *args: str, name: str = "n1",
                       token: str = TOKEN, lease: float | None = None) -> tuple[AgentProcess, Resumed]:
    agent = await AgentProcess.start("--slots", "4", *args, env=env)
    await agent.recv()       # hello
    await agent.send(Auth(token=token, name=name, lease=lease))
    resumed = await agent.recv_type(Resumed)
    return agent, resumed


@async_test
async def test_successor_takes_over_a_finished_and_a_running_job(env, tmp_path):
    first, resumed = await authed_agent(env)
    assert resumed == Resumed(running=(), finished=(), survivors=0, looks_again=True)
    await first.send(Run(job="fin", argv=gated(tmp_path / "g1", "echo early; exit 3")))
    fin = await first.recv_type(Started)
    await first.send(Run(job="run", argv=gated(tmp_path / "g2", "echo late")))
    run = await first.recv_type(Started)

    await first.close_stdin()                      # the controller is gone, without a bye
    await poll(lambda: len(sockets(env)) == 1, "the survivor listens")
    (tmp_path / "g1").touch()                      # one job ends while nobody listens
    await poll(lambda: not alive(fin.pid), "the first job has ended")
    assert alive(run.pid) and first.proc.returncode is None

    second, taken = await authed_agent(env)
    assert taken.survivors == 1 and "run" in taken.running
    assert set(taken.running) | set(taken.finished) == {"fin", "run"}
    ended = await second.recv_type(Ended)
    assert (ended.job, ended.outcome, ended.status, ended.stdout) == ("fin", Outcome.EXIT, 3, "early\n")
    await second.send(Ping(seq=1))
    assert (await second.recv_type(Pong)).running == 1      # the adopted job holds a slot
    await second.send(Ack(jobs=("fin",)))
    (tmp_path / "g2").touch()
    ended = await second.recv_type(Ended)
    assert (ended.job, ended.outcome, ended.stdout) == ("run", Outcome.EXIT, "late\n")
    assert first.proc.returncode is None           # not before its last outcome is acked
    await second.send(Ack(jobs=("run",)))
    assert await first.wait_exit() == 0            # everything handed over: the survivor goes
    assert sockets(env) == []
    await second.finish()


SUCCESSOR_LOOK = f"""
import asyncio
from pclient.lease import find_survivors
print([link.report.finished for link in asyncio.run(find_survivors({TOKEN!r}, "n1"))])
"""
"""What a successor agent does first, in a process of its own (an agent skips its own pid's socket)."""


@async_test
async def test_a_successor_that_looks_before_the_survivor_listens_leaves_its_socket_alone(env, monkeypatch):
    """A successor that looks while a survivor's socket is bound but not yet listening (the
    survivor preempted between the two, as under load) is refused by it: it must not find it
    under its name, take it for a dead agent's and remove it, which made the survivor give up
    its lease and the outcomes it held. The socket is found once it listens."""
    monkeypatch.setenv("PCLIENT_RUNTIME_DIR", env["PCLIENT_RUNTIME_DIR"])
    real_listen = socket.socket.listen
    looked: list[str] = []

    def listen_after_a_successor_looked(sock: socket.socket, *args: int) -> None:
        if not looked:       # our loop is held here until the successor's look is over
            looked.append(subprocess.run((PY, "-c", SUCCESSOR_LOOK), env=env, cwd=REPO, capture_output=True,
                                         text=True, check=True, timeout=WAIT).stdout)
        real_listen(sock, *args)

    monkeypatch.setattr(socket.socket, "listen", listen_after_a_successor_looked)
    listener = SurvivorListener(TOKEN, "n1")
    path = await listener.start()
    monkeypatch.undo()
    assert looked == ["[]\n"]                      # nothing to find yet, and nothing removed
    assert sockets(env) == [path]
    looking = await asyncio.create_subprocess_exec(PY, "-c", SUCCESSOR_LOOK, env=env, cwd=REPO,
                                                   stdout=asyncio.subprocess.PIPE)
    successor = await listener.successors.get()
    await successor.write(encode(Resumed(running=(), finished=("j",), survivors=0, looks_again=True)))
    found, _ = await asyncio.wait_for(looking.communicate(), WAIT)
    assert found == b"[('j',)]\n"                  # found once it listens
    await successor.close()
    await listener.close()
    assert sockets(env) == []


@async_test
async def test_a_wrong_token_or_another_host_name_is_refused(env, tmp_path):
    first, _ = await authed_agent(env)
    await first.send(Run(job="j", argv=gated(tmp_path / "g", "true")))
    job = await first.recv_type(Started)
    await first.close_stdin()
    await poll(lambda: len(sockets(env)) == 1, "the survivor listens")
    path = sockets(env)[0]
    with pytest.raises(PermissionError, match="wrong token"):
        await SurvivorLink.connect(path, "77" * 32)
    other, taken = await authed_agent(env, name="n2")          # another host: not even seen
    assert taken == Resumed(running=(), finished=(), survivors=0, looks_again=True)
    await other.finish()
    stranger, taken = await authed_agent(env, token="66" * 32)  # another controller's secret
    assert taken.survivors == 0
    await stranger.finish()
    assert alive(job.pid) and first.proc.returncode is None     # the survivor kept its job
    heir, taken = await authed_agent(env)
    assert taken.running == ("j",)
    await heir.send(Kill(job="j"))
    ended = await heir.recv_type(Ended)
    assert (ended.job, ended.outcome) == ("j", Outcome.KILLED)
    await heir.send(Ack(jobs=("j",)))
    assert await first.wait_exit() == 0
    await heir.finish()


@async_test
async def test_the_lease_runs_out_and_the_jobs_die_with_their_children(env):
    first, _ = await authed_agent(env, lease=0.3)
    # A job with a child in its group and a daemonized grandchild in a session of its own.
    await first.send(Run(job="j", argv=("sh", "-c", "sleep 30 & setsid sleep 31 & sleep 32")))
    job = await first.recv_type(Started)
    await first.close_stdin()
    assert await first.wait_exit() == 1                         # outcomes lost: status 1
    assert not _live_in_group(job.pid)
    assert not _token_processes()
    assert sockets(env) == []
    assert b"lease of 0.3 s ran out" in await first.stderr()


def _live_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                found.append(int(entry))
    return found


def _token_processes() -> list[int]:
    """Processes still carrying the agent mark of our jobs (none may survive the lease)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if b"PCLIENT_AGENT=" + survivor_key(TOKEN, "n1").encode() in environ:
                found.append(int(entry))
    return found


@async_test
async def test_without_auth_the_agent_does_not_survive(env):
    agent = await AgentProcess.start("--lease", "600", env=env)
    await agent.recv()
    await agent.send(Run(job="s", argv=("sleep", "30")))
    started = await agent.recv_type(Started)
    await agent.close_stdin()
    ended = await agent.recv_type(Ended)
    assert ended.outcome is Outcome.KILLED
    assert await agent.wait_exit() == 0 and not alive(started.pid)
    assert sockets(env) == []


@async_test
async def test_a_survivor_that_dies_while_taken_over_is_reported_lost(env, tmp_path):
    first, _ = await authed_agent(env)
    await first.send(Run(job="j", argv=gated(tmp_path / "never", "true")))
    job = await first.recv_type(Started)
    await first.close_stdin()
    await poll(lambda: len(sockets(env)) == 1, "the survivor listens")
    second, taken = await authed_agent(env)
    assert taken.running == ("j",)
    first.proc.send_signal(signal.SIGKILL)
    lost = await second.recv_type(Lost)
    assert lost.jobs == ("j",) and f"pid {first.proc.pid}" in lost.reason
    await first.wait_exit()
    # The killed survivor's job is an orphan now; the next agent to arrive ends it.
    assert alive(job.pid)
    await second.finish()
    third, taken = await authed_agent(env)
    assert taken == Resumed(running=(), finished=(), survivors=0, looks_again=True)
    await poll(lambda: not alive(job.pid), "the orphan is killed")
    await third.finish()


@async_test
async def test_auth_twice_is_an_error(env):
    agent, _ = await authed_agent(env)
    await agent.send(Auth(token=TOKEN, name="n1"))
    assert "already authenticated" in (await agent.recv_type(Error)).reason
    await agent.send(Bye())
    assert await agent.wait_exit() == 0


def test_runtime_dir_refuses_a_directory_open_to_others(monkeypatch):
    directory = tempfile.mkdtemp(dir="/tmp", prefix="pcl")
    try:
        os.chmod(directory, 0o755)
        monkeypatch.setenv("PCLIENT_RUNTIME_DIR", directory)
        from pclient.lease import LeaseError
        with pytest.raises(LeaseError, match="mode 755"):
            runtime_dir()
        os.chmod(directory, 0o700)
        assert runtime_dir() == Path(directory)
    finally:
        shutil.rmtree(directory)


# -- looking again: survivors that appear late, and agents that are gone ---------------------


async def ping_until(agent: AgentProcess, held: tuple[str, ...], want: type) -> tuple[Message, list[Message], list[Message]]:
    """Ping with `held` (as a controller holding those jobs does, every heartbeat) until a
    `want` message arrives; it, the messages before it and those after it up to the pong
    of the last ping (pongs aside), so that the stream is read up to a known point."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    before: list[Message] = []
    after: list[Message] = []
    found = None
    seq = 0
    while found is None:
        assert loop.time() < deadline, f"no {want.TYPE} within {WAIT} s; seen {before}"
        if seq:
            await asyncio.sleep(0.05)      # the controller's heartbeat
        seq += 1
        await agent.send(Ping(seq=seq, held=held))
        while True:
            msg = await agent.recv()
            if isinstance(msg, Pong):
                if msg.seq == seq:
                    break
            elif found is None and isinstance(msg, want):
                found = msg
            else:
                (before if found is None else after).append(msg)
    return found, before, after


@async_test
async def test_a_survivor_that_learns_late_it_was_left_is_taken_over_by_a_successor_still_looking(env, tmp_path):
    first, _ = await authed_agent(env)
    await first.send(Run(job="j", argv=gated(tmp_path / "g", "echo late-outcome; exit 4")))
    job = await first.recv_type(Started)
    second, taken = await authed_agent(env)        # first still thinks it is connected
    assert taken == Resumed(running=(), finished=(), survivors=0, looks_again=True)
    (tmp_path / "g").touch()                       # the job ends; first keeps its outcome
    await poll(lambda: not alive(job.pid), "the job has ended")
    for seq in (1, 2, 3):                          # first is alive: j is not called lost
        await second.send(Ping(seq=seq, held=("j",)))
        assert (await second.recv_type(Pong)).seq == seq
    await first.close_stdin()                      # now first learns that it was left
    late, before, after = await ping_until(second, ("j",), Resumed)
    assert late == Resumed(running=(), finished=("j",), survivors=1, looks_again=True)
    assert before == []                            # nothing else before: no `lost`
    [ended] = after or [await second.recv_type(Ended)]
    assert isinstance(ended, Ended)
    assert (ended.job, ended.outcome, ended.status, ended.stdout) == ("j", Outcome.EXIT, 4, "late-outcome\n")
    await second.send(Ack(jobs=("j",)))
    assert await first.wait_exit() == 0            # handed over: the survivor goes
    await second.send(Ping(seq=50, held=()))
    assert (await second.recv_type(Pong)).seq == 50
    await second.finish()


@async_test
async def test_a_running_job_found_late_is_adopted_and_reported_when_it_ends(env, tmp_path):
    first, _ = await authed_agent(env)
    await first.send(Run(job="r", argv=gated(tmp_path / "g", "echo carried-on")))
    job = await first.recv_type(Started)
    second, _ = await authed_agent(env)
    await first.close_stdin()
    await poll(lambda: len(sockets(env)) == 1, "the first agent waits for a successor")
    late, before, after = await ping_until(second, ("r",), Resumed)
    assert late == Resumed(running=("r",), finished=(), survivors=1, looks_again=True)
    assert before == after == []
    await second.send(Ping(seq=100))
    assert (await second.recv_type(Pong)).running == 1       # it holds a slot here now
    (tmp_path / "g").touch()
    ended = await second.recv_type(Ended)
    assert (ended.job, ended.outcome, ended.stdout) == ("r", Outcome.EXIT, "carried-on\n")
    assert not alive(job.pid)
    await second.send(Ack(jobs=("r",)))
    assert await first.wait_exit() == 0
    await second.finish()


@async_test
async def test_held_jobs_whose_agent_died_are_reported_lost_once_and_their_orphans_killed(env, tmp_path):
    first, _ = await authed_agent(env)
    await first.send(Run(job="j", argv=gated(tmp_path / "never", "true")))
    job = await first.recv_type(Started)
    second, _ = await authed_agent(env)            # first is alive: nothing swept
    assert alive(job.pid)
    first.proc.send_signal(signal.SIGKILL)
    await first.wait_exit()
    lost, before, after = await ping_until(second, ("j", "other"), Lost)
    assert before == after == []
    assert lost.jobs == ("j", "other") and "no other agent is alive" in lost.reason
    await poll(lambda: not alive(job.pid), "the dead agent's job is killed")
    for seq in (7, 8):                             # not reported again
        await second.send(Ping(seq=seq, held=("j", "other")))
    assert [(await second.recv()).seq for _ in range(2)] == [7, 8]
    await second.finish()


@async_test
async def test_live_agents_are_those_holding_their_mark(env):
    directory = Path(env["PCLIENT_RUNTIME_DIR"])
    first, _ = await authed_agent(env)
    second, _ = await authed_agent(env)
    other, _ = await authed_agent(env, name="n2")
    pids = {first.proc.pid, second.proc.pid}
    assert set(live_agents(TOKEN, "n1", exclude=set(), directory=directory)) == pids
    assert live_agents(TOKEN, "n1", exclude={second.proc.pid}, directory=directory) == [first.proc.pid]
    assert live_agents("66" * 32, "n1", exclude=set(), directory=directory) == []
    await first.finish()                            # a clean exit removes its mark
    second.proc.send_signal(signal.SIGKILL)         # a killed one leaves it, unlocked
    await second.wait_exit()
    marks = list(directory.glob(f"{survivor_key(TOKEN, 'n1')}-*.agent"))
    assert [m.name for m in marks] == [f"{survivor_key(TOKEN, 'n1')}-{second.proc.pid}.agent"]
    assert live_agents(TOKEN, "n1", exclude=set(), directory=directory) == []
    assert not list(directory.glob(f"{survivor_key(TOKEN, 'n1')}-*.agent"))   # and is removed
    assert live_agents(TOKEN, "n2", exclude=set(), directory=directory) == [other.proc.pid]
    await other.finish()
    stale = directory / "00ff00ff00ff00ff-1.agent"     # left by an agent killed long ago
    stale.touch()
    third, _ = await authed_agent(env, name="n3")
    assert not stale.exists()                           # swept as the new agent marks itself
    assert [m.name for m in directory.glob("*.agent")] == [f"{survivor_key(TOKEN, 'n3')}-{third.proc.pid}.agent"]
    await third.finish()


@async_test
async def test_a_stale_copy_found_late_is_killed_and_its_outcome_never_passed_on(env, tmp_path):
    """The controller gave up on job j (its grace ran out) and runs it again on the new
    agent; the old agent, found late, still runs its copy: that copy is killed and its
    outcome dropped, so j's one outcome is the new run's."""
    first, _ = await authed_agent(env)
    await first.send(Run(job="j", argv=gated(tmp_path / "never", "echo stale")))
    stale = await first.recv_type(Started)
    second, _ = await authed_agent(env)
    await second.send(Run(job="j", argv=gated(tmp_path / "g", "echo current; exit 2")))
    current = await second.recv_type(Started)
    await first.close_stdin()
    await poll(lambda: len(sockets(env)) == 1, "the old agent waits for a successor")
    late, before, after = await ping_until(second, ("x",), Resumed)    # x: still held
    assert late == Resumed(running=(), finished=(), survivors=1, looks_again=True)
    assert before == []
    [lost] = after or [await second.recv()]        # x: no other agent alive, so lost
    assert isinstance(lost, Lost) and lost.jobs == ("x",)
    await poll(lambda: not alive(stale.pid), "the stale copy is killed")
    assert await first.wait_exit() == 0            # its outcome acked by the successor: done
    assert alive(current.pid)
    (tmp_path / "g").touch()
    ended = await second.recv_type(Ended)          # the only outcome of j: the current run's
    assert (ended.job, ended.status, ended.stdout) == ("j", 2, "current\n")
    await second.send(Ack(jobs=("j",)))
    await second.finish()


@async_test
async def test_an_agent_whose_survivor_socket_would_be_too_long_says_so_at_auth():
    """A socket directory so deep that the survivor's socket could not be bound (a Unix socket's
    path has at most 107 bytes) is told to the controller at `auth`, as the agent starts: else it
    shows only once the controller is lost, when the agent, unable to wait for a successor, ends
    its jobs (what pytest's default basetemp, from pytest-10 on, did to tests/ha). It serves on."""
    directory = Path(tempfile.mkdtemp(dir="/tmp", prefix="pcl"))
    deep = directory / ("d" * 80)
    deep.mkdir(mode=0o700)
    try:
        agent = await AgentProcess.start("--slots", "4", env=dict(os.environ, PCLIENT_RUNTIME_DIR=str(deep)))
        await agent.recv()       # hello
        await agent.send(Auth(token=TOKEN, name="n1"))
        error = await agent.recv_type(Error)
        assert error.job is None
        assert "cannot outlive its controller" in error.reason and "PCLIENT_RUNTIME_DIR" in error.reason, error
        assert await agent.recv_type(Resumed) == Resumed(running=(), finished=(), survivors=0, looks_again=True)
        await agent.finish()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
