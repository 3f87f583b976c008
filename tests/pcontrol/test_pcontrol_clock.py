"""Clock discipline: periods and timeouts run on the monotonic clock, so a jump of the wall
clock (which only dates records) neither fires nor starves them."""

from __future__ import annotations

import asyncio

from pcontrol.controller import Controller, JobSpec
from pcontrol.model import JobState, Outcome
from pcontrol_harness import make_config, poll, run


def test_a_wall_clock_jump_neither_fires_nor_starves_timers() -> None:
    async def body() -> None:
        wall = [1_800_000_000.0]
        controller = Controller(None, make_config(), clock=lambda: wall[0])
        await controller.start()
        try:
            patient = controller.submit(JobSpec(argv=["true"], pending=600.0))
            hasty = controller.submit(JobSpec(argv=["true"], pending=0.3))
            uptime = controller.status()["uptime"]
            wall[0] += 3600.0                       # an hour ahead: nothing may fire early
            await asyncio.sleep(0)
            assert hasty.state is JobState.PENDING and patient.state is JobState.PENDING
            assert controller.status()["uptime"] < uptime + 1.0
            await poll(lambda: hasty.state is JobState.DONE, "the 0.3 s pending timeout")
            assert hasty.outcome is Outcome.PENDING
            assert patient.state is JobState.PENDING
            wall[0] -= 7200.0                       # an hour behind: nothing may starve
            late = controller.submit(JobSpec(argv=["true"], pending=0.3))
            await poll(lambda: late.state is JobState.DONE, "the 0.3 s pending timeout",
                       timeout=5.0)
            assert hasty.ended == 1_800_003_600.0   # records carry the wall clock
        finally:
            await controller.stop()
    run(body())
