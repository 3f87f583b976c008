"""The agent's half of a synchronized run (pclient.syncstart, pclient.syncgate), driven as a
real subprocess: prepare -> ready, go -> launched at the instant -> ended; the refusals; kill
at the gate; bye with a job at its gate; the clock probe."""

from __future__ import annotations

import os
import signal
import time

from agent_harness import alive, async_test, start_agent
from pclient.protocol import (
    Bye,
    ClockProbe,
    ClockReply,
    Ended,
    Error,
    Go,
    Kill,
    Launched,
    Outcome,
    Prepare,
    Ready,
)


@async_test
async def test_prepared_jobs_start_at_the_instant():
    agent, _ = await start_agent("--slots", "1")
    for job in ("s1", "s2", "s3"):          # more than its slots: sync jobs take none
        await agent.send(Prepare(job=job, argv=("sh", "-c", f"echo {job}")))
    ready = {}
    for _ in range(3):
        msg = await agent.recv_type(Ready)
        ready[msg.job] = msg
        assert alive(msg.pid)               # forked, waiting at its gate
    instant = time.time() + 0.3
    await agent.send(Go(jobs=("s1", "s2", "s3"), at=instant - 1.0, offset=1.0))   # at + offset
    launched, ended = {}, {}
    while len(ended) < 3:
        msg = await agent.recv()
        if isinstance(msg, Launched):
            launched[msg.job] = msg
        else:
            assert isinstance(msg, Ended), msg
            ended[msg.job] = msg
    for job in ("s1", "s2", "s3"):
        assert launched[job].clock >= instant and launched[job].clock - instant < 0.05
        assert ended[job].outcome is Outcome.EXIT and ended[job].status == 0
        assert ended[job].stdout == f"{job}\n"
        assert ready[job].clock < instant
    await agent.finish()


@async_test
async def test_refusals_a_missing_program_and_a_kill_at_the_gate():
    agent, _ = await start_agent()
    await agent.send(Prepare(job="bad", argv=("no-such-program-here",)))
    ended = await agent.recv_type(Ended)              # before it was ever ready
    assert (ended.job, ended.status) == ("bad", 127)
    assert "no such program" in ended.stderr
    await agent.send(Go(jobs=("nobody",), at=time.time()))
    error = await agent.recv_type(Error)
    assert error.job == "nobody" and "no prepared job" in error.reason
    await agent.send(Prepare(job="held", argv=("sleep", "30")))
    ready = await agent.recv_type(Ready)
    await agent.send(Prepare(job="held", argv=("true",)))
    error = await agent.recv_type(Error)
    assert "already prepared" in error.reason
    await agent.send(Kill(job="held"))
    ended = await agent.recv_type(Ended)
    assert (ended.job, ended.outcome) == ("held", Outcome.KILLED)
    assert not alive(ready.pid)
    # bye with a job at its gate: it is killed and reported before the agent exits
    await agent.send(Prepare(job="left", argv=("sleep", "30")))
    ready = await agent.recv_type(Ready)
    await agent.send(Bye())
    ended = await agent.recv_type(Ended)
    assert (ended.job, ended.outcome) == ("left", Outcome.KILLED)
    assert await agent.wait_exit() == 0
    assert not alive(ready.pid)


@async_test
async def test_the_clock_probe_answers_with_its_times():
    agent, _ = await start_agent()
    t0 = time.time()
    await agent.send(ClockProbe(seq=7, sent=t0))
    reply = await agent.recv_type(ClockReply)
    t3 = time.time()
    assert (reply.seq, reply.sent) == (7, t0)
    assert t0 <= reply.received <= reply.replied <= t3     # one machine, one clock
    await agent.finish()


@async_test
async def test_the_gate_folder_of_an_agent_killed_9_goes_when_the_next_one_makes_its_own(tmp_path):
    """An agent's gate folder (pclient-sync-PID-XXXX, with its socket) outlives a kill -9 of the
    agent; the next agent to prepare a sync job in the same temporary directory removes it,
    and leaves the folders of agents still alive."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    first, _ = await start_agent(env=env)
    await first.send(Prepare(job="held", argv=("sleep", "30")))
    held = await first.recv_type(Ready)
    first.proc.kill()
    await first.proc.wait()
    os.kill(held.pid, signal.SIGKILL)
    stale = [p.name for p in tmp_path.glob(f"pclient-sync-{first.proc.pid}-*")]
    assert len(stale) == 1 and (tmp_path / stale[0] / "gate").exists()
    live = tmp_path / f"pclient-sync-{os.getpid()}-kept"          # this process is alive
    (live / "gate").parent.mkdir()
    (live / "gate").write_text("")
    second, _ = await start_agent(env=env)
    await second.send(Prepare(job="next", argv=("true",)))
    await second.recv_type(Ready)
    assert not (tmp_path / stale[0]).exists()
    assert (live / "gate").exists()
    assert len(list(tmp_path.glob(f"pclient-sync-{second.proc.pid}-*"))) == 1
    await second.send(Kill(job="next"))
    await second.recv_type(Ended)
    await second.finish()
    assert not list(tmp_path.glob(f"pclient-sync-{second.proc.pid}-*"))
