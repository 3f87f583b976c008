"""A host's spool never keeps orphaned files for good: pcontrol has its agents sweep it.

As an agent connects (and every `spool_sweep_every` seconds) pcontrol sends `sweep`; the agent
lists the spooled jobs of pcontrol's part of its spool that it cannot account for, and pcontrol
drops those it does not know either. Files a drop never reached (a journal lost, a crash between
forgetting a job and telling its agent, an older version's leak), a dead agent's unfinished files
and the part of a pcontrol that is gone go; a running job's, a finished job's not yet harvested,
and anything touched within the sweep's age stay. An older agent is never asked and works as before.

Real pcontrol (in-process, on its socket) and real local agents.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from spoolfiles import HOUR, dead_pid, plant
from pclient.lease import survivor_key
from pcontrol_harness import LOCAL_AGENT, controller_running, make_config, poll, run, write_older_pclient





@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spool"
    monkeypatch.setenv("PCLIENT_SPOOL_DIR", str(path))   # the local agents'
    return path


def test_orphans_go_as_the_agent_connects_and_nothing_else(home: str, spool: Path, caplog) -> None:
    async def body() -> None:
        async with controller_running(home, make_config()) as h:
            mine = spool / survivor_key(h.controller.host_table.token, "n1")
            orphans = [plant(mine / "4242.stdout"), plant(mine / "4242.stderr"), plant(mine / "17.stdout")]
            dead = plant(mine / f".99.stdout.pclient-{dead_pid()}-1.part")
            young = plant(mine / "4343.stdout", age=60)                   # within the sweep's age
            gone = spool / "0123456789abcdef"                              # a pcontrol whose home was wiped
            plant(gone / "5.stdout", age=40 * 86400)
            os.utime(gone, (time.time() - 40 * 86400,) * 2)
            recent = plant(spool / "fedcba9876543210" / "5.stdout", age=86400)
            await h.add_local("n1")
            await poll(lambda: not any(p.exists() for p in (*orphans, dead)) and not gone.exists(),
                       "the orphans swept")
            assert young.exists() and recent.exists()
            job = await h.wait_job(await h.submit("-spool", "-host", "n1", "--", "echo", "kept"))
            assert job["spooled"]
            assert (await h.cmd("output", job["id"], "stdout", "-json"))["eof"]
    with caplog.at_level("INFO", logger="pcontrol.reports"):
        run(body())
    said = [r.getMessage() for r in caplog.records if "spool sweep" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("n1: spool sweep: removing the spooled output of 2 job(s) no longer ours "
                              "(17, 4242) and 2 leftover file(s) of 14 bytes, with the spool parts of 1 "
                              "controller(s) or agent(s) gone for 30 days (0123456789abcdef)"), said


def test_a_running_and_an_unharvested_job_keep_their_files_through_sweeps(home: str, spool: Path,
                                                                          tmp_path: Path) -> None:
    """With no age to protect them, sweeps every heartbeat: pcontrol's own knowledge keeps them."""
    gate = tmp_path / "gate"

    async def body() -> None:
        config = make_config(spool_sweep_every=0.2, spool_sweep_age=0.0)
        async with controller_running(home, config) as h:
            await h.add_local("n1", slots=2)
            mine = spool / survivor_key(h.controller.host_table.token, "n1")
            running = await h.submit("-spool", "-host", "n1", "--", "sh", "-c",
                                     f"echo running; while [ ! -e {gate} ]; do sleep 0.01; done")
            await h.wait_started(running)
            finished = await h.submit("-spool", "-host", "n1", "--", "echo", "finished")
            assert (await h.wait_job(finished))["spooled"]       # not harvested: kept until then
            late = plant(mine / "31337.stdout", age=0)           # an orphan that came after both
            await poll(lambda: not late.exists(), "a sweep after both jobs")
            assert sorted(p.name for p in mine.iterdir() if not p.name.startswith(".")) == \
                [f"{finished}.stderr", f"{finished}.stdout"]
            assert any(p.name.startswith(f".{running}.stdout.pclient-") for p in mine.iterdir())
            gate.touch()
            assert (await h.wait_job(running))["spooled"]
            late = plant(mine / "31338.stdout", age=0)
            await poll(lambda: not late.exists(), "a sweep after the running job's end")
            for job in (running, finished):
                piece = await h.cmd("output", job, "stdout", "-json")
                assert piece["eof"] and piece["data"]
    run(body())


def test_an_older_agent_is_never_asked_and_keeps_working(home: str, spool: Path) -> None:
    old = write_older_pclient(Path(home) / "old")
    protocol = old / "pclient" / "protocol.py"      # an agent from before the sweep: its hello says 0
    source = protocol.read_text()
    assert "\nSWEEP_VERSION = 1\n" in source
    protocol.write_text(source.replace("\nSWEEP_VERSION = 1\n", "\nSWEEP_VERSION = 0\n", 1))
    connect = f"env PYTHONPATH={old} {sys.executable} -P -m pclient"

    async def body() -> None:
        async with controller_running(home, make_config()) as h:
            token = h.controller.host_table.token
            kept = plant(spool / survivor_key(token, "old") / "4242.stdout")
            swept = plant(spool / survivor_key(token, "new") / "4242.stdout")
            await h.cmd("host", "add", "old", "-connect", connect)
            host = await h.wait_host("old", "IDLE")
            assert host["agent"]["agent"] == "pclient 0.2.9"
            job = await h.wait_job(await h.submit("-spool", "-host", "old", "--", "echo", "old"))
            assert job["spooled"]
            assert (await h.cmd("output", job["id"], "stdout", "-json"))["eof"]
            await h.cmd("host", "add", "new", "-connect", LOCAL_AGENT)
            await h.wait_host("new", "IDLE")
            await poll(lambda: not swept.exists(), "the newer agent's sweep")
            assert kept.exists()       # the older agent, connected first, was sent none
    run(body())


def test_a_journal_moved_aside_leaves_no_spooled_output_behind(home: str, spool: Path) -> None:
    """The jobs of a journal that is gone are no job of the next pcontrol (the same secret, so
    the same part of the spool): their files go at its agent's first sweep once old enough."""
    async def first() -> tuple[int, Path]:
        async with controller_running(home, make_config()) as h:
            await h.add_local("n1")
            job = await h.wait_job(await h.submit("-spool", "-host", "n1", "--", "echo", "before"))
            assert job["spooled"]                     # finished, never harvested
            return job["id"], spool / survivor_key(h.controller.host_table.token, "n1")

    async def second(mine: Path, left: list[Path]) -> None:
        async with controller_running(home, make_config()) as h:
            assert not h.controller.jobs
            await h.add_local("n1")
            await poll(lambda: not any(p.exists() for p in left), "the forgotten job's files swept")

    job, mine = run(first())
    left = [mine / f"{job}.stdout", mine / f"{job}.stderr"]
    assert all(p.exists() for p in left)
    for path in left:                                 # an hour and more later
        os.utime(path, (time.time() - 2 * HOUR,) * 2)
    Path(home, "pcontrol.db").rename(Path(home, "pcontrol.db.bad"))
    run(second(mine, left))
