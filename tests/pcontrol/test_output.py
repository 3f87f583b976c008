"""`output`: a spooled job's whole stdout/stderr, read from its agent piece by piece."""

from __future__ import annotations

import base64

import pytest

from pcontrol.errors import CommandFailed
from pcontrol_harness import controller_running, make_config, run

DATA = bytes(range(256)) * 8192   # 2 MiB: two pieces of the default size, every byte value


def test_output_reads_a_spooled_job_and_refuses_the_others(home: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PCLIENT_SPOOL_DIR", str(tmp_path / "spool"))  # the local agent's
    payload = tmp_path / "payload"
    payload.write_bytes(DATA)

    async def body() -> None:
        # heartbeats of 1 s: the 2 MiB pass through the agent's pty while pings wait behind them
        async with controller_running(home, make_config(heartbeat=1.0)) as h:
            await h.add_local("n1")
            spooled = await h.submit("-spool", "-output-limit", "1000", "--", "cat", str(payload))
            plain = await h.submit("-output-limit", "1000", "--", "cat", str(payload))
            running = await h.submit("--", "sleep", "30")
            record = await h.wait_job(spooled)
            assert record["spooled"] and record["stdout_bytes"] == len(DATA)
            got, offset = b"", 0
            while True:
                piece = await h.cmd("output", spooled, "stdout", "-offset", offset, "-json")
                got += base64.b64decode(piece["data"])
                offset += len(base64.b64decode(piece["data"]))
                if piece["eof"]:
                    break
            assert got == DATA
            await h.wait_job(plain)
            with pytest.raises(CommandFailed, match="was not spooled by its agent"):
                await h.cmd("output", plain, "stdout")
            with pytest.raises(CommandFailed, match="its output is read once it has ended"):
                await h.cmd("output", running, "stdout")
            with pytest.raises(CommandFailed, match="expected stdout or stderr"):
                await h.cmd("output", spooled, "stdin")
    run(body())
