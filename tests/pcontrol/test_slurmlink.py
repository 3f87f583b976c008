"""SlurmLink's bookkeeping against a tiny in-memory stand-in for Slurm's commands (the
Commands seam): how many squeue calls a poll costs, and what an unreachable cluster does.
Outcomes themselves are tested against a real cluster in test_slurm.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pclient import protocol as agent_protocol
from pcontrol.slurm import CommandResult, SlurmLink, connect_slurm
from pcontrol.slurmstate import SlurmOptions, host_tag
from waiting import wait_until


class FakeSlurm:
    """Answers sbatch, squeue and scancel from a dict of jobs; counts the calls."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[str]] = {}       # id -> [state, name]
        self.calls: list[list[str]] = []
        self.down = False

    async def __call__(self, argv, stdin=None) -> CommandResult:
        self.calls.append(list(argv))
        if self.down:
            return CommandResult(1, "", "slurm_load_jobs error: Unable to contact slurm "
                                        "controller (connect failure)")
        program = argv[0]
        if program == "sbatch" and "--version" in argv:
            return CommandResult(0, "slurm 0.0\n", "")
        if program == "sbatch":
            job_id = str(len(self.jobs) + 1)
            name = next(a.split("=", 1)[1] for a in argv if a.startswith("--job-name="))
            self.jobs[job_id] = ["RUNNING", name]
            return CommandResult(0, f"{job_id}\n", "")
        if program == "squeue":
            wanted = argv[argv.index("-j") + 1].split(",") if "-j" in argv else list(self.jobs)
            lines = [f"{i}|{self.jobs[i][0]}|None|0|2026-12-06T02:53:47|"
                     f"2026-12-06T02:53:48|(null)|{self.jobs[i][1]}|"
                     for i in wanted if i in self.jobs]
            return CommandResult(0, "".join(line + "\n" for line in lines), "")
        if program == "scancel":
            self.jobs[argv[1]][0] = "CANCELLED"
            return CommandResult(0, "", "")
        return CommandResult(127, "", f"unknown {program}")


async def _link(fake: FakeSlurm, tmp: Path) -> tuple[SlurmLink, list, list]:
    messages: list[agent_protocol.Message] = []
    lost: list[str] = []
    link = await connect_slurm("c1", SlurmOptions(), slots=None, tag=host_tag("t", "c1"),
                               output_dir=tmp, poll=3600.0,
                               on_message=lambda _link, m: messages.append(m),
                               on_lost=lambda _link, reason: lost.append(reason),
                               commands=fake)
    return link, messages, lost


def test_one_squeue_per_poll_for_all_jobs(tmp_path):
    async def main() -> None:
        fake = FakeSlurm()
        link, messages, _ = await _link(fake, tmp_path)
        for number in range(1, 51):
            link.send(agent_protocol.Run(job=str(number), argv=("true",)))
        await wait_until(lambda: sum(isinstance(m, agent_protocol.Started)
                                     for m in messages) == 50, "50 jobs were submitted")
        for job in fake.jobs.values():
            job[0] = "COMPLETED"
        fake.calls.clear()
        await link.poll_once()
        squeues = [call for call in fake.calls if call[0] == "squeue"]
        assert len(squeues) == 1 and len(squeues[0][squeues[0].index("-j") + 1].split(",")) == 50
        await wait_until(lambda: sum(isinstance(m, agent_protocol.Ended) for m in messages) == 50,
                         "50 ends were reported")
        ended = [m for m in messages if isinstance(m, agent_protocol.Ended)]
        assert len(ended) == 50 and {m.outcome for m in ended} == {agent_protocol.Outcome.EXIT}
        link.send(agent_protocol.Run(job="1", argv=("true",)))        # already there
        await link.poll_once()
        assert sum(call[0] == "sbatch" for call in fake.calls) == 0
        link.hang_up("done")

    asyncio.run(main())


def test_unreachable_cluster_ends_the_link_with_slurms_words(tmp_path):
    async def main() -> None:
        fake = FakeSlurm()
        link, messages, lost = await _link(fake, tmp_path)
        link.send(agent_protocol.Run(job="1", argv=("true",)))
        await wait_until(lambda: any(isinstance(m, agent_protocol.Started) for m in messages),
                         "the job was submitted")
        fake.down = True
        try:
            await link.poll_once()
        except Exception as exc:          # the poll loop turns this into lost()
            link.lost(str(exc))
        assert lost and "Unable to contact slurm controller" in lost[0]
        assert not link.send(agent_protocol.Kill(job="1"))
        assert fake.jobs["1"][0] == "RUNNING"            # left to Slurm, not cancelled

    asyncio.run(main())
