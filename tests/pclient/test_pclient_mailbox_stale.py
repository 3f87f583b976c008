"""A job mailbox directory (pclient.mailbox, `psched-mail-<pid>-XXXX` in the temporary
directory) left by an agent killed -9 with a job's inbox and outbox in it is removed by the
next agent that makes a mailbox; a live agent's directory is kept, files and all.

Real agents (`python -m pclient`) with TMPDIR pointed at the test's own directory."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from agent_harness import AgentProcess, async_test, start_agent
from pclient.protocol import Ended, Kill, Run, Started
from waiting import wait_until

# A job that says something in its outbox, then stays until it is killed.
TALKER = ("sh", "-c", 'echo "probe hello" > "$PSCHED_OUTBOX"; exec sleep 600')


def mailbox_of(tmp_path: Path, agent: AgentProcess) -> Path | None:
    """The agent's mailbox directory once its job's outbox is written, else None."""
    for directory in tmp_path.glob(f"psched-mail-{agent.proc.pid}-*"):
        if list(directory.glob("*.out")):
            return directory
    return None


@async_test
async def test_a_killed_agent_s_mailbox_goes_when_the_next_agent_makes_one(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    live, _ = await start_agent(env=env)
    killed, _ = await start_agent(env=env)
    jobs = []
    try:
        for agent, job in ((live, "a"), (killed, "b")):
            await agent.send(Run(job=job, argv=TALKER, mailbox=True, inbox=("sched hi",)))
            jobs.append((await agent.recv_type(Started)).pid)
        live_box = await wait_until(lambda: mailbox_of(tmp_path, live), "the live agent's job wrote its outbox")
        dead_box = await wait_until(lambda: mailbox_of(tmp_path, killed), "the other agent's job wrote its outbox")
        assert sorted(p.suffix for p in dead_box.iterdir()) == [".in", ".out"]

        os.kill(killed.proc.pid, signal.SIGKILL)
        await killed.wait_exit()
        assert dead_box.exists()  # nothing removes it until someone makes a mailbox

        nextone, _ = await start_agent(env=env)
        await nextone.send(Run(job="c", argv=("true",), mailbox=True))
        await nextone.recv_type(Started)
        assert (await nextone.recv_type(Ended)).job == "c"
        assert not dead_box.exists()
        assert sorted(p.suffix for p in live_box.iterdir()) == [".in", ".out"]  # a live owner's: kept
        await nextone.finish()

        await live.send(Kill(job="a"))
        await live.recv_type(Ended)
        await live.finish()
    finally:
        for pid in jobs:  # (the killed agent's job may outlive it)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, TypeError):
                pass
        for agent in (live, killed):
            if agent.proc.returncode is None:
                agent.proc.kill()
                await agent.proc.wait()


@async_test
async def test_a_live_owner_s_directory_is_kept_though_its_pid_means_nothing_here(tmp_path):
    """A process in another pid namespace that shares this temporary directory names its
    mailbox directory with a pid that is gone (or another process's) here: the flock it holds
    on the directory is what keeps it, until that owner is killed -9."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    owner, _ = await start_agent(env=env)
    try:
        await owner.send(Run(job="a", argv=("true",), mailbox=True))
        await owner.recv_type(Started)
        await owner.recv_type(Ended)
        [made] = tmp_path.glob(f"psched-mail-{owner.proc.pid}-*")
        elsewhere = made.rename(tmp_path / "psched-mail-4194999-elsewhere")  # (no such pid here)
        (elsewhere / "7.job.in").write_text("a message\n")

        async def next_agent_makes_a_mailbox() -> None:
            nextone, _ = await start_agent(env=env)
            await nextone.send(Run(job="b", argv=("true",), mailbox=True))
            await nextone.recv_type(Started)
            await nextone.recv_type(Ended)
            await nextone.finish()

        await next_agent_makes_a_mailbox()
        assert (elsewhere / "7.job.in").read_text() == "a message\n"  # its owner lives: kept

        os.kill(owner.proc.pid, signal.SIGKILL)
        await owner.wait_exit()
        await next_agent_makes_a_mailbox()
        assert not elsewhere.exists()  # its owner is dead: the lock is free, the directory goes
    finally:
        if owner.proc.returncode is None:
            owner.proc.kill()
            await owner.proc.wait()
