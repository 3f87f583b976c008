"""Synchronized runs through real local agents (and one through a real sshd): `sync run`.

Each test starts one controller with a few local hosts (each its own pclient process) and
asks for runs as a client does; the result is checked field by field.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from pcontrol_harness import controller_running, kill_group, poll, run
from sshd_harness import SSHD, SshdUnavailable, start_sshd


def spec(name: str, targets: list[tuple], **options: Any) -> str:
    """targets: (host, argv) or (host, argv, timeout)."""
    items = []
    for target in targets:
        item: dict[str, Any] = {"host": target[0], "argv": list(target[1])}
        if len(target) > 2:
            item["timeout"] = target[2]
        items.append(item)
    return json.dumps({"name": name, "targets": items, **options})


async def sync_run(h: Any, text: str) -> dict[str, Any]:
    return await h.cmd("sync", "run", text)


def by_index(result: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {t["index"]: t for t in result["targets"]}


def test_start_output_timeouts_quorum_and_offsets(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            for name in ("n1", "n2", "n3"):
                await h.add_local(name, slots=1)
            # the repeated host (n3 twice), output gathered, a target's own timeout
            result = await sync_run(h, spec("mixed", [
                ("n1", ["sh", "-c", "echo out-n1; echo err-n1 >&2"]),
                ("n2", ["sh", "-c", "echo out-n2; exit 3"]),
                ("n3", ["sleep", "30"], 0.5),
                ("n3", ["sh", "-c", "echo again-n3"]),
            ], minhosts=2, timeout=20))
            t = by_index(result)
            assert [t[i]["outcome"] for i in (1, 2, 3, 4)] == ["EXIT 0", "EXIT 3", "TIMEOUT", "EXIT 0"]
            assert (t[1]["stdout"], t[1]["stderr"]) == ("out-n1\n", "err-n1\n")
            assert t[4]["stdout"] == "again-n3\n" and t[4]["host"] == "n3"
            assert 0.45 < t[3]["run_time"] < 5
            assert result["succeeded"] == 2 and result["required"] == 2
            assert result["verdict"] == "success"
            starts = [t[i]["start_ms"] for i in (1, 2, 3, 4)]
            assert all(s is not None and -5 < s < 50 for s in starts), starts
            assert result["skew_ms"]["max"] == pytest.approx(max(starts) - min(starts), abs=0.01)
            assert result["skew_ms"]["p95"] <= result["skew_ms"]["max"]
            assert result["lead_ms"] >= 150
            # the block's timeout applies where a target has none; minhosts N fails the run
            # once fewer than N can still succeed
            result = await sync_run(h, spec("slow", [
                ("n1", ["sleep", "30"]), ("n2", ["true"]), ("n3", ["false"]),
            ], minhosts=2, timeout=0.5))
            t = by_index(result)
            assert [t[i]["outcome"] for i in (1, 2, 3)] == ["TIMEOUT", "EXIT 0", "EXIT 1"]
            assert result["verdict"] == "failure"
            assert "can still succeed" in result["reason"]
            # minhosts 0 never fails
            result = await sync_run(h, spec("zero", [("n1", ["false"]), ("n2", ["false"])], minhosts=0))
            assert result["verdict"] == "success" and result["succeeded"] == 0
            # the text: a table and the skew line
            reply = await h.reply("sync", "run", spec("text", [("n1", ["echo", "hi"])]))
            assert "START MS" in reply.text and "verdict: success" in reply.text
            assert "--- 1 n1 stdout\nhi" in reply.text
            # offsets were measured over the links: shown by hosts and check host
            detail = await h.reply("check", "host", "n1")
            assert "offset:" in detail.text and "round trip" in detail.text
            hosts = await h.reply("hosts")
            assert "OFFSET" in hosts.text
            record = await h.cmd("check", "host", "n2")
            assert abs(record["agent"]["clock_offset"]) < 0.01   # one machine, one clock
    run(body())


def test_minhosts_all_kills_the_others_at_the_first_failure(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            for name in ("n1", "n2"):
                await h.add_local(name)
            result = await sync_run(h, spec("all", [
                ("n1", ["sh", "-c", "exit 4"]), ("n2", ["sleep", "30"]), ("n2", ["sleep", "30"]),
            ]))
            t = by_index(result)
            assert t[1]["outcome"] == "EXIT 4"
            assert t[2]["outcome"] == t[3]["outcome"] == "KILLED"
            assert "target 1 on n1 ended EXIT 4" in t[2]["reason"]
            assert t[2]["run_time"] < 10
            assert result["verdict"] == "failure" and result["required"] == 3
            # a program that does not exist fails before the start, with the agent's words
            result = await sync_run(h, spec("missing", [("n1", ["no-such-program-x"]), ("n2", ["sleep", "30"])]))
            t = by_index(result)
            assert t[1]["outcome"] == "EXIT 127" and "no such program" in t[1]["reason"]
            assert t[2]["outcome"] == "KILLED" and t[2]["start_ms"] is None   # never started
            assert result["verdict"] == "failure"
    run(body())


def test_a_host_down_before_the_start_and_a_target_killed_mid_run(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            for name in ("n1", "n2"):
                await h.add_local(name)
            await h.cmd("host", "add", "gone", "-connect", "false")
            await h.wait_host("gone", "DOWN")
            result = await sync_run(h, spec("down", [
                ("n1", ["true"]), ("gone", ["true"]), ("n2", ["true"]),
            ], minhosts=2))
            t = by_index(result)
            assert t[2]["outcome"] == "DOWN" and "host gone is DOWN" in t[2]["reason"]
            assert t[2]["start_ms"] is None
            assert result["verdict"] == "success" and result["succeeded"] == 2
            # the target on the down host fails a minhosts-all run before anything starts
            result = await sync_run(h, spec("down-all", [("n1", ["true"]), ("gone", ["true"])]))
            t = by_index(result)
            assert t[1]["outcome"] == "KILLED" and t[1]["start_ms"] is None
            assert result["verdict"] == "failure"

            # a target's process killed from outside while it runs: CRASH SIGKILL
            marker = Path(home) / "victim.pid"
            task = asyncio_task(sync_run(h, spec("victim", [
                ("n1", ["sh", "-c", f"echo $$ > {marker}; exec sleep 30"]), ("n2", ["true"]),
            ], minhosts=1)))
            await poll(lambda: marker.exists() and marker.read_text().strip(), "the victim's pid")
            os.kill(int(marker.read_text()), signal.SIGKILL)
            result = await task
            t = by_index(result)
            assert t[1]["outcome"] == "CRASH SIGKILL"
            assert result["verdict"] == "success"

            # the agent itself lost mid-run: its targets end DOWN
            marker.unlink()
            agent_pid = (await h.cmd("check", "host", "n2"))["agent"]["pid"]
            task = asyncio_task(sync_run(h, spec("lost", [
                ("n2", ["sh", "-c", f"echo $$ > {marker}; exec sleep 30"]), ("n1", ["true"]),
            ], minhosts=0)))
            await poll(lambda: marker.exists() and marker.read_text().strip(), "the target's pid")
            os.kill(agent_pid, signal.SIGKILL)
            result = await task
            kill_group(int(marker.read_text()))     # its agent is gone: nobody else ends it
            t = by_index(result)
            assert t[1]["outcome"] == "DOWN" and "n2" in t[1]["reason"]
            assert t[2]["outcome"] == "EXIT 0"
    run(body())


def asyncio_task(coro: Any) -> Any:
    import asyncio

    return asyncio.get_running_loop().create_task(coro)


def test_bad_input_is_refused_before_anything_runs(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("n1")
            cases = [
                (spec("u", [("nosuch", ["true"])]), "target host nosuch"),
                (spec("m", [("n1", ["true"])], minhosts=2), "-minhosts 2 is more than its 1 target"),
                (spec("c", [("n1", [])]), "has no command"),
                (json.dumps({"name": "e", "targets": []}), "no targets"),
                (spec("t", [("n1", ["true"], -1)]), "must be a number of seconds"),
                ("{not json", "not valid JSON"),
            ]
            for text, expected in cases:
                reply = await h.reply("sync", "run", text)
                assert not reply.ok and expected in reply.text, (expected, reply.text)
            # an unknown host is added when the spec says so (NetJobs), and reported
            result = await sync_run(h, spec("add", [("n1", ["true"])], add_hosts=True))
            assert result["added_hosts"] == [] and result["verdict"] == "success"
    run(body())


@pytest.mark.skipif(not SSHD.exists(), reason=f"{SSHD} is missing: install openssh-server")
def test_a_target_through_a_real_sshd(home: str) -> None:
    try:
        with start_sshd(Path(home) / "sshd") as sshd:
            async def body() -> None:
                async with controller_running(home) as h:
                    await h.add_local("n1")
                    await h.cmd("host", "add", "viassh", "-connect", sshd.connect_command())
                    await h.wait_host("viassh", "IDLE")
                    result = await sync_run(h, spec("ssh", [
                        ("n1", ["sh", "-c", "echo local"]), ("viassh", ["sh", "-c", "echo through ssh"]),
                    ]))
                    t = by_index(result)
                    assert [t[1]["outcome"], t[2]["outcome"]] == ["EXIT 0", "EXIT 0"]
                    assert t[2]["stdout"] == "through ssh\n"
                    assert result["skew_ms"]["max"] < 50
                    record = await h.cmd("check", "host", "viassh")
                    assert record["agent"]["clock_delay"] > 0
            run(body())
    except SshdUnavailable as exc:
        pytest.skip(str(exc))


def test_sync_kill_ends_a_run_under_way(home: str) -> None:
    from pcontrol.client import ControllerClient

    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("n1")
            other = await ControllerClient.connect(home)     # a run holds its connection
            try:
                reply = await other.request(["sync", "kill", "long"])
                assert not reply.ok and 'no sync run named "long"' in reply.text
                task = asyncio_task(sync_run(h, spec("long", [("n1", ["sleep", "30"]),
                                                              ("n1", ["sleep", "30"])], minhosts=0)))
                await poll(lambda: any(t.launched for run in h.controller.syncs._runs.values()
                                       for t in run.targets), "the run's start")
                killed = await other.call("sync", "kill", "long")
                assert killed["runs"] == 1
                result = await task
                assert [t["outcome"] for t in result["targets"]] == ["KILLED", "KILLED"]
                assert result["verdict"] == "failure" and result["reason"] == "killed on request"
            finally:
                await other.close()
    run(body())
