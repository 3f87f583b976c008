"""pcontrol in a high-availability pool (pcontrol.adoption): the jobs of an earlier leader's
controller, found on this one's agents, are kept unclaimed (not killed, their outcomes not
acknowledged) until `adopt` claims them; requests carrying a lower fencing token are refused
and logged; a higher one becomes the controller's and reaches its agents."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from pcontrol.client import CommandFailed
from pcontrol.fencing import FENCE_ENV
from procs import alive
from pcontrol_harness import controller_running, poll, run
from test_survival import gated, open_gate, sockets

OWNER = "sched:/pool/b"


def test_the_next_controller_adopts_running_and_finished_jobs_by_id(home: str, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO)
    second = os.path.join(home, "b")
    os.makedirs(second, mode=0o700)

    async def first_leader() -> dict:
        monkeypatch.setenv(FENCE_ENV, "5")
        async with controller_running(home, stop_kill=False) as h:
            await h.add_local("node1", slots=3)
            runs = await h.cmd("job", "-id", 5000000001, *gated(home, "g1", "echo across; exit 3"))
            ends = await h.cmd("job", "-id", 5000000002, *gated(home, "g2", "echo meanwhile; exit 5"))
            assert (runs["id"], ends["id"]) == (5000000001, 5000000002)
            with pytest.raises(CommandFailed, match="in use"):
                await h.cmd("job", "-id", 5000000001, "--", "true")
            return {job: (await h.wait_started(job))["pid"] for job in (runs["id"], ends["id"])}

    async def next_leader(pids: dict) -> None:
        await poll(lambda: len(sockets(home)) == 1, "the agent waits for a successor")
        open_gate(home, "g2")                       # ends while no controller leads
        await poll(lambda: not alive(pids[5000000002]), "the second job has ended")
        shutil.copy(os.path.join(home, "secret"), os.path.join(second, "secret"))
        monkeypatch.setenv(FENCE_ENV, "9")
        async with controller_running(second) as h:
            await h.add_local("node1", slots=3)
            await poll(lambda: "5000000001" in h.controller._pool_state()[0], "the running job is kept unclaimed")
            await poll(lambda: "5000000002" in h.controller._pool_state()[1], "the outcome is kept unclaimed")
            assert h.controller.jobs == {}
            adopted = await h.cmd("adopt", "-owner", OWNER, "-task", "t", "-host", "node1", "--", 5000000001, "sh")
            assert (adopted["state"], adopted["owner"], adopted["ran_on"]) == ("BUSY", OWNER, "node1")
            finished = await h.cmd("adopt", "-owner", OWNER, "-task", "t", "--", 5000000002, "sh")
            assert (finished["state"], finished["outcome"], finished["status"]) == ("DONE", "EXIT", 5)
            assert (await h.cmd("stdout", 5000000002))["stdout"] == "meanwhile\n"
            reply = await h.reply("adopt", "-owner", OWNER, "-task", "t", "--", 5000000003, "sh")
            assert reply.ok and reply.data is None, reply     # no agent has it: it never reached one
            open_gate(home, "g1")
            ended = await h.wait_job(5000000001)
            assert (ended["outcome"], ended["status"]) == ("EXIT", 3)   # its true outcome, here
            # a deposed leader's scheduler (a lower token) is refused; a higher one is taken
            h.client.fence = 7
            refused = await h.reply("jobs")
            assert not refused.ok and "fenced: token 7 is lower than 9" in refused.text
            h.client.fence = 12
            assert (await h.reply("jobs")).ok
            assert h.controller.host_table.fence == 12
            h.client.fence = 9
            assert "lower than 12" in (await h.reply("jobs")).text

    run(next_leader(run(first_leader())))
    text = caplog.text
    assert "refused a request of" in text and "fenced: token 7 is lower than 9" in text
    assert "fencing token 12" in text
    assert "the agent runs job 5000000001 of an earlier controller of the pool" in text
    assert "adopt: no agent has job 5000000003" in text


def test_an_agent_of_a_deposed_controller_still_running_leaves_it_and_its_job_is_adopted(
        home: str, monkeypatch, caplog) -> None:
    """The earlier leader's pcontrol lives on (only its scheduler died, or it is cut off): its
    agent, fenced by the new controller's agent, leaves it at its next ping, and the new
    controller's `adopt` finds the job by looking again (its pings name it)."""
    caplog.set_level(logging.INFO)
    second = os.path.join(home, "b")
    os.makedirs(second, mode=0o700)

    async def both() -> None:
        monkeypatch.setenv(FENCE_ENV, "5")
        async with controller_running(home) as old:
            await old.add_local("node1", slots=2)
            job = await old.cmd("job", "-id", 5000000007, *gated(home, "g", "exit 4"))
            await old.wait_started(job["id"])
            shutil.copy(os.path.join(home, "secret"), os.path.join(second, "secret"))
            monkeypatch.setenv(FENCE_ENV, "9")
            async with controller_running(second) as new:
                await new.add_local("node1", slots=2)
                adopted = await new.cmd("adopt", "-owner", OWNER, "-task", "t", "-host", "node1", "--",
                                        5000000007, "sh")
                assert (adopted["state"], adopted["ran_on"]) == ("BUSY", "node1")
                open_gate(home, "g")
                ended = await new.wait_job(5000000007)
                assert (ended["outcome"], ended["status"]) == ("EXIT", 4)

    run(both())
    assert "adopt: job 5000000007 of sched:/pool/b (task t) runs on node1: taken over" in caplog.text
