"""The agent's spool on a disk that has no room (pclient.agent, pclient.spool): a spooled job
whose output cannot be kept whole still ends with its true outcome and its head (`spooled`
false: the controller fetches nothing), the controller is told once (an `error` without a
job), not once a job, and what was kept of such a job is removed at once (the controller
never drops a job it was told is not spooled). A job whose output fits is spooled as ever.

No room is the agent's RLIMIT_FSIZE (set with prlimit once it runs: a write past it fails with
EFBIG, as one on a full disk fails with ENOSPC), so the test needs no root;
tests/faults/test_faults_agentdisk.py fills a real file system."""

from __future__ import annotations

import os
import resource
from pathlib import Path

from agent_harness import async_test, start_agent
from pclient.protocol import Ended, Error, Run, Started
from waiting import wait_until

ROOM = 64 * 1024
"""Bytes an agent's file may hold."""
LONG = ("sh", "-c", "head -c 200000 /dev/zero")


def _spooled_files(spool: Path) -> list[str]:
    return sorted(p.name for part in spool.iterdir() for p in part.iterdir())


@async_test
async def test_outputs_that_find_no_room_are_said_once_and_leave_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    agent, _ = await start_agent("--slots", "1", env=dict(os.environ, PCLIENT_SPOOL_DIR=str(spool)))
    resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE, (ROOM, ROOM))
    await agent.send(Run(job="1", argv=LONG, output_limit=1000, spool=True))
    await agent.recv_type(Started)
    said = await agent.recv_type(Error)
    assert said.job is None
    assert said.reason.startswith("cannot spool the output of job 1 (cannot write ")
    assert "File too large" in said.reason and "said at most once every 10 minutes" in said.reason
    ended = await agent.recv_type(Ended)
    assert (ended.outcome.value, ended.status, ended.spooled) == ("exit", 0, False)
    assert (ended.stdout_bytes, len(ended.stdout), ended.stdout_truncated) == (200000, 1000, True)

    await agent.send(Run(job="2", argv=LONG, output_limit=1000, spool=True))
    await agent.recv_type(Started)
    ended = await agent.recv_type(Ended)      # (no second `error`: said once)
    assert (ended.job, ended.status, ended.spooled, ended.stdout_bytes) == ("2", 0, False, 200000)

    await agent.send(Run(job="3", argv=("echo", "short"), spool=True))
    await agent.recv_type(Started)
    ended = await agent.recv_type(Ended)
    assert (ended.job, ended.spooled, ended.stdout) == ("3", True, "short\n")
    await wait_until(lambda: _spooled_files(spool) == ["3.stderr", "3.stdout"],
                     "the cut jobs' files are gone, the whole one's kept")
    await agent.finish()


@async_test
async def test_a_spool_directory_that_cannot_be_made_is_said_once(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    spool = tmp_path / "file" / "spool"
    agent, _ = await start_agent("--slots", "1", env=dict(os.environ, PCLIENT_SPOOL_DIR=str(spool)))
    for job in ("1", "2"):
        await agent.send(Run(job=job, argv=("echo", "hi"), spool=True))
        if job == "1":
            said = await agent.recv_type(Error)
            assert said.job is None and said.reason.startswith("cannot spool the output of job 1 (cannot write ")
            assert "Not a directory" in said.reason, said.reason
        await agent.recv_type(Started)
        ended = await agent.recv_type(Ended)
        assert (ended.job, ended.status, ended.spooled, ended.stdout) == (job, 0, False, "hi\n")
    await agent.finish()
