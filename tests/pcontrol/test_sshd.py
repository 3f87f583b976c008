"""One host through a real sshd on 127.0.0.1 with a throwaway key (skipped without sshd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcontrol_harness import controller_running, run
from sshd_harness import SSHD, SshdUnavailable, start_sshd

pytestmark = pytest.mark.skipif(not SSHD.exists(),
                                reason=f"{SSHD} is missing: install openssh-server to run "
                                       "the real-ssh test")


def test_jobs_through_a_real_sshd(home: str) -> None:
    try:
        with start_sshd(Path(home) / "sshd") as sshd:
            async def body() -> None:
                async with controller_running(home) as h:
                    await h.cmd("host", "add", "viassh", "-slots", "2",
                                "-connect", sshd.connect_command())
                    host = await h.wait_host("viassh", "IDLE")
                    assert host["agent_slots"] == 2
                    ids = [await h.submit("-host", "viassh", "--", "sh", "-c",
                                          f"echo job {i} on $(hostname); exit {i}")
                           for i in range(3)]
                    records = [await h.wait_job(job_id) for job_id in ids]
                    assert [(r["outcome"], r["status"]) for r in records] == [
                        ("EXIT", 0), ("EXIT", 1), ("EXIT", 2)]
                    assert all(r["ran_on"] == "viassh" for r in records)
                    out = await h.cmd("stdout", ids[2])
                    assert out["stdout"].startswith("job 2 on ")
                    # a wrong key is refused by the real sshd, with ssh's own words
                    bad = sshd.connect_command().replace(str(sshd.key), "/dev/null")
                    await h.cmd("host", "add", "badkey", "-connect", bad)
                    down = await h.wait_host("badkey", "DOWN")
                    assert "permission denied" in down["reason"].lower()
            run(body())
    except SshdUnavailable as exc:
        pytest.skip(str(exc))
