"""A forgotten job's spooled output is dropped even when its agent is away at that moment.

pcontrol tells the agent to remove a spooled job's files (`drop`) when it forgets the job, its
retention after the harvest. A pcontrol that starts again forgets the jobs its journal kept
(all past their retention) before the host's agent has connected, and a host may be DOWN when
its jobs' time comes: a drop that cannot go out then is kept on the host and sent once its
agent connects. Before, it was lost, and the files stayed in the agent's spool for good (a
restart of the embedded default after 3,000 spooled jobs left 1,846 files of 2,000).
"""

from __future__ import annotations

from pclient import protocol as agent_protocol
from pcontrol.controller import Controller, JobSpec
from pcontrol.model import Host
from pcontrol_harness import make_config, run


def test_a_drop_for_an_absent_agent_goes_out_when_it_connects() -> None:
    async def body() -> None:
        controller = Controller(None, make_config())
        host = Host(name="n1")
        controller.hosts["n1"] = host
        sent: list[agent_protocol.Message] = []
        connected = False

        def send(to: Host, message: agent_protocol.Message) -> bool:
            if not connected:
                return False
            sent.append(message)
            return True

        controller.host_table.send = send  # type: ignore[method-assign]
        jobs = []
        for _ in range(3):
            job = controller.submit(JobSpec(argv=["true"], host="n1", required=True, owner="s1"))
            job.ran_on, job.spooled = "n1", True
            jobs.append(job)
        for job in jobs:                  # forgotten while the agent is away (no connection)
            controller._forget(job)
        await controller.durable()        # the outbox has sent what it holds
        assert not controller.jobs and not sent
        connected = True
        controller.host_connected(host)
        await controller.durable()
        assert sorted(m.job for m in sent if isinstance(m, agent_protocol.Drop)) == \
            sorted(job.agent_word for job in jobs)
        sent.clear()
        controller.host_connected(host)   # a later connection sends nothing again
        await controller.durable()
        assert not [m for m in sent if isinstance(m, agent_protocol.Drop)]
    run(body())


def test_a_spool_sweep_drops_only_what_is_no_job_of_ours_nor_the_pools() -> None:
    """The agent's `spooled` (the jobs it cannot account for): pcontrol drops a forgotten job's
    and an earlier attempt's, never its current jobs', nor, in a pool, another controller's job
    kept unclaimed for `adopt`."""
    async def body() -> None:
        for fence in (None, 5):
            controller = Controller(None, make_config())
            controller.host_table.fence = fence
            host = Host(name="n1")
            controller.hosts["n1"] = host
            sent: list[agent_protocol.Message] = []
            controller.host_table.send = lambda to, message: sent.append(message) or True  # type: ignore[method-assign]
            retried = controller.submit(JobSpec(argv=["true"], host="n1", required=True))
            retried.attempts = ({"host": "n1", "outcome": "DOWN", "reason": "lost"},)
            current = controller.submit(JobSpec(argv=["true"], host="n1", required=True))
            controller._keep_unclaimed(host, "7000000001")   # in a pool: another leader's, running
            words = (str(retried.id), retried.agent_word, current.agent_word, "7000000001", "999")
            controller.agent_message(host, agent_protocol.Spooled(seq=1, jobs=words))
            await controller.durable()
            dropped = sorted(m.job for m in sent if isinstance(m, agent_protocol.Drop))
            pool = [] if fence is not None else ["7000000001"]
            assert dropped == sorted([str(retried.id), "999", *pool]), (fence, dropped)
            assert retried.agent_word == f"{retried.id}.1"
    run(body())
