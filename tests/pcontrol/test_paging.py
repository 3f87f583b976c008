"""`jobs` in pages: `-limit N -after ID` in id order, the text table's default cap, the
client's all_jobs() that pages through everything, and the point of it all: with 100,000
pending jobs, a `status` is answered between the pages another client fetches."""

from __future__ import annotations

import asyncio
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pcontrol import verbs
from pcontrol.client import JOBS_PAGE, ControllerClient
from pcontrol.controller import Controller, JobSpec
from pcontrol.errors import CommandFailed, UsageError
from pcontrol_harness import WAIT, controller_running, run


class Session:
    """Just enough of a connection for a handler."""

    def __init__(self, controller: Controller):
        self.controller = controller


async def _jobs(controller: Controller, *words: str) -> Any:
    return await verbs.TABLE.run(Session(controller), ["jobs", *words])


def _controller(count: int) -> Controller:
    """`count` pending jobs (no hosts); the odd ids belong to owner `me`."""
    controller = Controller(None)
    for number in range(1, count + 1):
        controller.submit(JobSpec(argv=["true", str(number)],
                                  owner="me" if number % 2 else None))
    return controller


@pytest.mark.parametrize("words, ids", [
    (["-limit", "5"], [1, 2, 3, 4, 5]),
    (["-limit", "5", "-after", "5"], [6, 7, 8, 9, 10]),
    (["-limit", "5", "-after", "10"], [11, 12]),            # short: the last page
    (["-limit", "5", "-after", "12"], []),
    (["-after", "9", "-json"], [10, 11, 12]),               # no -limit: all after ID
    (["-after", "-3", "-limit", "2"], [1, 2]),
    (["-owner", "me", "-limit", "2", "-after", "3"], [5, 7]),
    (["-owner", "me", "-state", "PENDING", "-limit", "100"], [1, 3, 5, 7, 9, 11]),
    (["-owner", "nobody", "-limit", "3"], []),
    (["-json"], list(range(1, 13))),                        # as ever: every job
])
def test_a_page_is_the_ids_after_ID_in_order_at_most_N(words: list[str],
                                                       ids: list[int]) -> None:
    async def body() -> None:
        result = await _jobs(_controller(12), *words)
        assert [record["id"] for record in result.data] == ids
    run(body())


def test_the_table_says_how_many_more_and_how_to_see_them() -> None:
    async def body() -> None:
        controller = _controller(12)
        page = await _jobs(controller, "-owner", "me", "-limit", "2", "-after", "1")
        assert page.text.splitlines()[-1] == (
            "... 3 more jobs after job 5; see them with: "
            "jobs -owner me -limit 2 -after 5")
        last = await _jobs(controller, "-owner", "me", "-limit", "2", "-after", "7")
        assert [r["id"] for r in last.data] == [9, 11] and "more job" not in last.text
        one_more = await _jobs(controller, "-limit", "11")
        assert one_more.text.endswith("... 1 more job after job 11; see them with: "
                                      "jobs -limit 11 -after 11")
    run(body())


def test_without_limit_the_table_stops_at_TEXT_ROWS_but_json_gives_every_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verbs, "TEXT_ROWS", 4)

    async def body() -> None:
        controller = _controller(10)
        table = await _jobs(controller)
        lines = table.text.splitlines()
        assert lines[0].startswith("ID") and len(lines) == 1 + 4 + 1
        assert lines[-1] == "... 6 more jobs after job 4; see them with: jobs -limit 4 -after 4"
        assert [r["id"] for r in table.data] == [1, 2, 3, 4]
        everything = await _jobs(controller, "-json")
        assert [r["id"] for r in everything.data] == list(range(1, 11))
        assert "more job" not in everything.text
        rest = await _jobs(controller, "-limit", "4", "-after", "8")
        assert [r["id"] for r in rest.data] == [9, 10]
    run(body())


def test_a_page_is_cut_short_to_keep_the_reply_small(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        controller = Controller(None)
        for size in (10, 10, 3000, 10, 10):
            controller.submit(JobSpec(argv=["echo", "x" * size]))
        monkeypatch.setattr(verbs, "PAGE_BYTES", 4000)
        first = await _jobs(controller, "-limit", "100")
        assert [r["id"] for r in first.data] == [1, 2]      # the big one would pass 4000
        assert "3 more jobs after job 2" in first.text
        big = await _jobs(controller, "-limit", "100", "-after", "2")
        assert [r["id"] for r in big.data] == [3]           # alone over budget: still sent
        rest = await _jobs(controller, "-limit", "100", "-after", "3")
        assert [r["id"] for r in rest.data] == [4, 5]
    run(body())


def test_json_without_limit_refuses_what_one_reply_cannot_carry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verbs, "UNPAGED_BYTES", 5000)

    async def body() -> None:
        controller = _controller(12)
        with pytest.raises(UsageError) as caught:
            await _jobs(controller, "-json")
        assert caught.value.message.startswith("12 jobs match, more than one reply can carry; "
                                               "fetch them in pages: jobs ... -limit N -after ID")
        assert caught.value.data == {"matching": 12}
        small = await _jobs(controller, "-owner", "me", "-after", "8", "-json")
        assert [r["id"] for r in small.data] == [9, 11]
    run(body())


def test_pages_neither_repeat_nor_skip_when_jobs_come_and_go_between_them() -> None:
    async def body() -> None:
        controller = _controller(6)
        first = await _jobs(controller, "-limit", "3")
        controller.delete("2", force=True)            # on the page already read
        controller.delete("4", force=True)            # on the next page
        controller.submit(JobSpec(argv=["late"]))     # id 7, after everything
        second = await _jobs(controller, "-limit", "3", "-after", str(first.data[-1]["id"]))
        assert [r["id"] for r in first.data] == [1, 2, 3]
        assert [r["id"] for r in second.data] == [5, 6, 7]
    run(body())


@pytest.mark.parametrize("words, message", [
    (["-limit", "0"], "-limit must be at least 1, got 0"),
    (["-limit", "-5"], "-limit must be at least 1, got -5"),
    (["-limit", "many"], 'expected an integer for -limit but got "many"'),
    (["-after", "x7"], 'expected a job id for -after but got "x7"'),
    (["-limit"], 'option "-limit" of "jobs" needs a value (N)'),
])
def test_bad_paging_options_are_usage_errors(words: list[str], message: str) -> None:
    async def body() -> None:
        with pytest.raises(UsageError) as caught:
            await _jobs(_controller(1), *words)
        assert caught.value.message == message
    run(body())


# -- the client --------------------------------------------------------------------------------

def test_all_jobs_pages_through_every_matching_job(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            for number in range(7):
                await h.submit("-owner", "me" if number < 6 else "other", "--", "true")
            sent: list[list[str]] = []
            real_call = h.client.call

            async def counting_call(*argv: str, **kwargs: Any) -> Any:
                sent.append(list(argv))
                return await real_call(*argv, **kwargs)

            h.client.call = counting_call          # type: ignore[method-assign]
            mine = await h.client.all_jobs("-owner", "me", page=4)
            assert [r["owner"] for r in mine] == ["me"] * 6
            assert [r["id"] for r in mine] == sorted(r["id"] for r in mine)
            # 4 + 2, then an empty page: only that one says there is no more
            assert sent == [["jobs", "-owner", "me", "-limit", "4", "-after", str(after)]
                            for after in (0, mine[3]["id"], mine[5]["id"])]
            sent.clear()
            everyone = await h.client.all_jobs(page=7)
            assert len(everyone) == 7 and len(sent) == 2
            with pytest.raises(CommandFailed, match='unknown state "NOPE"'):
                await h.client.all_jobs("-state", "NOPE")
            with pytest.raises(ValueError, match="page must be at least 1"):
                await h.client.all_jobs(page=0)
    run(body())


# -- 100,000 pending jobs: status between the pages ------------------------------------------

JOBS = 100_000

#: A pcontrol server of its own (another process, as in production) holding JOBS pending
#: jobs in memory; it says "ready" once they are there and serves until stdin closes.
BIG_SERVER = r"""
import asyncio, sys
from pathlib import Path
from pcontrol.controller import Controller, JobSpec
from pcontrol.server import ControlServer

async def main(socket_path, count):
    controller = Controller(None)
    await controller.start()
    for number in range(count):
        controller.submit(JobSpec(argv=["sleep", str(number)], owner="me",
                                  env={"PSCHED_SUBMIT": f"s:{number}"}))
    server = ControlServer(controller, Path(socket_path))
    await server.start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.close()
    await controller.stop()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _start_big_server(home: str) -> tuple[subprocess.Popen, str]:
    socket_path = str(Path(home) / "big.sock")
    process = subprocess.Popen([sys.executable, "-c", BIG_SERVER, socket_path, str(JOBS)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], 120)
    assert readable and process.stdout.readline() == "ready\n", "the server did not start"
    return process, socket_path


def test_status_is_answered_between_the_pages_of_100k_jobs(home: str) -> None:
    process, socket_path = _start_big_server(home)
    events: list[str] = []
    latencies: list[float] = []

    async def body() -> tuple[int, float]:
        pager = await ControllerClient.connect(socket_path=socket_path)
        prober = await ControllerClient.connect(socket_path=socket_path)
        paging_started = asyncio.Event()
        paging_done = asyncio.Event()

        async def page_through() -> int:
            seen = 0
            while True:
                batch = await pager.call("jobs", "-owner", "me", "-limit", str(JOBS_PAGE),
                                         "-after", str(seen), timeout=120)
                assert [r["id"] for r in batch] == list(range(seen + 1, seen + len(batch) + 1))
                seen += len(batch)
                paging_started.set()
                if not batch:
                    events.append("paging done")
                    paging_done.set()
                    return seen

        async def probe() -> None:
            await asyncio.wait_for(paging_started.wait(), 120)
            while not paging_done.is_set():
                start = time.perf_counter()
                status = await prober.call("status", timeout=120)
                latencies.append(time.perf_counter() - start)
                assert status["jobs"]["PENDING"] == JOBS
                events.append("status")

        try:
            start = time.perf_counter()
            seen, _ = await asyncio.wait_for(asyncio.gather(page_through(), probe()), 300)
            return seen, time.perf_counter() - start
        finally:
            await pager.close()
            await prober.close()

    try:
        seen, paging_seconds = run(body())
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT)
    assert seen == JOBS
    # The first status was sent once the first page had arrived, and answered before the
    # last page: the server took it between two pages.
    assert events[0] == "status" and "paging done" in events[1:], events[:3]
    print(f"\n{JOBS} pending jobs, paged {JOBS_PAGE} at a time in {paging_seconds:.2f} s "
          f"({JOBS // JOBS_PAGE} pages); {len(latencies)} status probes meanwhile: "
          f"median {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms (load average {os.getloadavg()[0]:.1f})")
