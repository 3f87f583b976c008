"""Every job outcome through real local pclients, plus dispatch order, kill and delete."""

from __future__ import annotations

import signal

from pcontrol.errors import CommandFailed
from pcontrol_harness import controller_running, kill_group, run

import pytest


def test_exit_status_and_output(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("localhost", slots=2)
            job_id = await h.submit("-env", "GREETING=hi", "--", "sh", "-c",
                                    'echo "$GREETING out"; echo err >&2; exit 7')
            record = await h.wait_job(job_id)
            assert (record["outcome"], record["status"], record["signal"]) == ("EXIT", 7, None)
            assert record["ran_on"] == "localhost" and record["elapsed"] >= 0
            assert h.log.job_states(job_id)[-1] == "DONE"
            assert (await h.cmd("stdout", job_id))["stdout"] == "hi out\n"
            assert (await h.cmd("stderr", job_id))["stderr"] == "err\n"
            detail = await h.cmd("check", "job", job_id, "-output")
            assert detail["stdout"] == "hi out\n" and detail["stdout_bytes"] == 7
    run(body())


def test_program_not_found_exits_127(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("localhost")
            record = await h.wait_job(await h.submit("--", "/no/such/program"))
            assert (record["outcome"], record["status"]) == ("EXIT", 127)
    run(body())


def test_crash_reports_the_signal(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("localhost")
            record = await h.wait_job(await h.submit("--", "sh", "-c", "kill -SEGV $$"))
            assert (record["outcome"], record["signal"]) == ("CRASH", signal.SIGSEGV)
            assert record["status"] is None
    run(body())


def test_timeout(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("localhost")
            record = await h.wait_job(await h.submit("-timeout", "0.3", "--", "sleep", "30"))
            assert record["outcome"] == "TIMEOUT"
            assert record["elapsed"] < 10
    run(body())


def test_kill_running_and_pending(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("localhost", slots=1)
            running = await h.submit("--", "sleep", "30")
            waiting = await h.submit("--", "true")
            started = await h.wait_started(running)
            try:
                assert (await h.cmd("check", "job", waiting))["state"] == "PENDING"
                await h.cmd("kill", waiting)
                assert (await h.wait_job(waiting))["outcome"] == "KILLED"
                await h.cmd("kill", running)
                record = await h.wait_job(running)
                assert record["outcome"] == "KILLED" and record["kill_requested"]
            finally:
                kill_group(started["pid"])
            failed = await h.reply("kill", running)
            assert not failed.ok and "already ended" in failed.text
    run(body())


def test_pending_timeout_for_a_required_host_that_is_off(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("node1")
            await h.cmd("host", "off", "node1")
            await h.wait_host("node1", "OFF")
            job_id = await h.submit("-host", "node1", "-required", "-pending", "0.3",
                                    "--", "true")
            record = await h.wait_job(job_id)
            assert record["outcome"] == "PENDING"
            assert "required host node1 is OFF" in record["reason"]
            assert h.log.job_states(job_id) == ["PENDING", "DONE"]
    run(body())


def test_required_host_not_defined_is_down(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            reply = await h.cmd("job", "-host", "ghost", "-required", "--", "true")
            assert reply["state"] == "DONE" and reply["outcome"] == "DOWN"
            assert "ghost is not defined" in reply["reason"]
            # a preferred host that does not exist is only a preference
            await h.add_local("localhost")
            record = await h.wait_job(await h.submit("-host", "ghost", "--", "true"))
            assert record["outcome"] == "EXIT" and record["ran_on"] == "localhost"
    run(body())


def test_dispatch_order_required_preferred_priority_age(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("node1", slots=1)
            await h.cmd("host", "off", "node1")
            await h.wait_host("node1", "OFF")
            low = await h.submit("--", "true")
            high = await h.submit("-priority", "5", "--", "true")
            high_later = await h.submit("-priority", "5", "--", "true")
            preferred = await h.submit("-host", "node1", "-priority", "-9", "--", "true")
            required = await h.submit("-host", "node1", "-required", "-priority", "-9",
                                      "--", "true")
            await h.cmd("host", "on", "node1")
            for job_id in (low, high, high_later, preferred, required):
                await h.wait_job(job_id)
            started = [e.data["id"] for e in h.log.events
                       if e.kind.value == "job" and e.data["state"] == "BUSY"
                       and e.data.get("pid") is None]
            assert started == [required, preferred, high, high_later, low]
    run(body())


def test_jobs_spread_over_hosts_and_slots(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("node1", slots=2)
            await h.add_local("node2", slots=2)
            ids = [await h.submit("--", "true") for _ in range(12)]
            records = [await h.wait_job(job_id) for job_id in ids]
            assert all(r["outcome"] == "EXIT" and r["status"] == 0 for r in records)
            assert {r["ran_on"] for r in records} == {"node1", "node2"}
            status = await h.cmd("status")
            assert status["jobs"]["DONE"] == 12 and status["hosts"]["IDLE"] == 2
    run(body())


def test_delete_only_finished_jobs(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            pending = await h.submit("--", "true")           # no host: stays pending
            refused = await h.reply("delete", pending)
            assert not refused.ok and "PENDING; deleting it cancels it" in refused.text
            await h.cmd("kill", pending)
            await h.cmd("delete", pending)
            missing = await h.reply("check", "job", pending)
            assert not missing.ok and missing.error.code == "not_found"
    run(body())


@pytest.mark.parametrize("argv, message", [
    (["job", "-required", "--", "true"], "-required needs -host"),
    (["job", "-timeout", "soon", "--", "true"], "number of seconds"),
    (["job", "-host", "bad name", "--", "true"], "bad host name"),
    (["job", "--"], "wrong # args"),
    (["jobs", "-state", "RUNNING"], 'unknown state "RUNNING"'),
    (["check", "job", "x"], 'expected a job id'),
    (["check", "job", "99"], "no job 99"),
])
def test_bad_job_commands(home: str, argv: list[str], message: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            with pytest.raises(CommandFailed) as caught:
                await h.cmd(*argv)
            assert message in caught.value.message
    run(body())


def test_a_job_too_big_for_the_agent_protocol_is_refused() -> None:
    from pcontrol.controller import Controller, JobSpec
    from pcontrol.errors import UsageError

    async def body() -> None:
        controller = Controller(None)
        # control characters become 6-byte \u escapes: 3 MiB of them exceed the 16 MiB line
        with pytest.raises(UsageError, match="cannot be sent to an agent"):
            controller.submit(JobSpec(argv=["echo", "\x01" * (3 * 1024 * 1024)]))
        assert controller.jobs == {}
        assert controller.submit(JobSpec(argv=["echo", "fine"])).id == 1
    run(body())


@pytest.mark.parametrize("argv, message, data", [
    (["job", "--", "echo", "a\0b"],
     "ARGV word 2 ('a\\x00b') holds a NUL byte (at character 2), which no program can "
     "receive as an argument",
     {"argv_word": 2}),
    (["job", "--", "\0echo"],
     "ARGV word 1 ('\\x00echo') holds a NUL byte", {"argv_word": 1}),
    (["job", "--", "echo", "ok", "x" * 50 + "\0"],
     f"ARGV word 3 ('{'x' * 40}'...) holds a NUL byte (at character 51)", {"argv_word": 3}),
    (["job", "-env", "A=1", "-env", "B=x\0y", "--", "true"],
     "-env 'B': the variable holds a NUL byte, which no environment can carry", {"env": "B"}),
    (["job", "-cwd", "/tmp\0", "--", "true"],
     "-cwd '/tmp\\x00' holds a NUL byte", {"cwd": "/tmp\0"}),
])
def test_a_nul_byte_is_refused_at_submit_naming_the_word(
        home: str, argv: list[str], message: str, data: dict) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            reply = await h.reply(*argv)
            assert not reply.ok and reply.error.code == "usage"
            assert reply.text.startswith(message)
            assert reply.data == data
            assert h.controller.jobs == {}               # nothing was accepted
            assert (await h.submit("--", "echo", "fine")) == 1
    run(body())
