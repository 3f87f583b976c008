"""A host's connection lost mid-job, for real: the host is a network namespace with its own
sshd, reached by pcontrol over ssh through a veth pair. Either the link is taken down while
a sched job runs there (no FIN, no RST: the packets just stop) and the host must be DOWN
within the heartbeat limit (3 intervals), the agent there keeping the job and its outcome
(the job ends while the link is down) until the link is back; or the ssh process is
SIGKILLed. Then the host comes back, its new agent takes the old one over, and the job's
true outcome reaches its exit macro, once.

The namespace's sshd runs with ClientAliveInterval 1 / ClientAliveCountMax 2, as
docs/operators.md advises: sshd then ends the dead session within ~3 s (the agent's own
watchdog on pcontrol's pings would tell it a little later).

The second test is bug D, without any network: the agent's connection stalls (its ssh
stand-in is stopped), the host goes DOWN by missed heartbeats, and its next agent starts
while the old one may still think it is connected. Either the old agent's watchdog gives
the silent connection up, or (its watchdog slack made huge) it learns only when the stall
ends; either way the job stays held at pcontrol, the new agent keeps looking for survivors
while pcontrol names the job in its pings, takes the old agent over when it appears, and
the job's true outcome is collected, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest

from fault_harness import (PYTHON, FaultHome, Shell, alive, count, job_script, read_exit_log,
                           wait_until)
from netns_harness import NetnsUnavailable, check_available, namespace_hosts
from procs import children_of

HEARTBEAT = 0.5
SERVE = ("--heartbeat", str(HEARTBEAT), "--retry-min", "0.5", "--retry-max", "1",
         "--lease", "120", "--grace", "60")
SSHD_KEEPALIVE = ("ClientAliveInterval 1", "ClientAliveCountMax 2")
#: what may pass beyond the heartbeat limit before the DOWN is seen (loop turns, polling)
DOWN_SLACK = 0.5

def _netns_reason() -> str | None:
    try:
        check_available()
    except NetnsUnavailable as exc:
        return str(exc)
    return None


def gated(gate: str, then: str) -> str:
    return f"while [ ! -e {gate} ]; do sleep 0.02; done; {then}"


@pytest.mark.skipif(_netns_reason() is not None, reason=f"no namespace hosts here: {_netns_reason()}")
@pytest.mark.parametrize("fault", ["cut", "ssh-killed"])
def test_a_lost_connection_to_a_namespace_host_is_survived_and_the_true_outcome_collected_once(
        fault_home: FaultHome, shells: Callable[[], Shell], fault: str) -> None:
    """cut: the link goes down (DOWN within 3 heartbeats; the job ends while cut off, kept by
    its agent; the link comes back). ssh-killed: the ssh process pcontrol started is
    SIGKILLed (DOWN at once; sshd sees the connection close and the agent survives). Either
    way the host's next agent takes the old one over and the job's true outcome reaches its
    exit macro, once."""
    home = fault_home
    env = {"PCLIENT_RUNTIME_DIR": str(home.run_dir)}
    if os.environ.get("PYTHONPATH"):      # the namespace host runs the same code as we do
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    with namespace_hosts(home.path / "ns", 1, env=env, sshd_options=SSHD_KEEPALIVE) as [ns]:
        home.start(SERVE)
        home.call_sync("host", "add", "ns1", "-slots", "2", "-connect",
                       ns.connect_command(f"{PYTHON} -m pclient --slots 2"))
        gate = home.path / "gate"
        exit_log = home.path / "exits"
        sh = shells()
        sh.run(job_script("far", exit_log, [gated(str(gate), "echo true-outcome; exit 7")],
                          nmax=1, npending=1, host="ns1 -required",
                          selectors=("7", "down", "default")))
        sh.run("run")

        async def lose_and_regain() -> tuple[dict, int]:
            job = await wait_until(lambda: next(iter(sh.sched.jobs.values()), None), "the job is made")
            await wait_until(lambda: job.state.value == "RUNNING", "the job runs on ns1")
            # its agent's "started" (with the pid) has reached pcontrol: a cut before that is
            # another case (the job is then known by the survivor's report only)
            [record] = await home.jobs(home.owner)
            record = await wait_until(lambda: _started(home, str(record["id"])), "pcontrol has the job's pid")
            host = await home.call("check", "host", "ns1")
            assert (record["ran_on"], host["running"]) == ("ns1", [record["id"]])
            old_agent = host["agent"]["pid"]
            lost = time.time()
            if fault == "cut":
                ns.cut()
            else:
                os.kill(host["agent"]["local_pid"], signal.SIGKILL)     # the ssh client
            down = await wait_until(lambda: _host_in(home, "ns1", "DOWN"), "ns1 is DOWN")
            # when pcontrol marked it DOWN (its history, wall clock), not when we looked
            [when] = [e["time"] for e in down["history"] if e["state"] == "DOWN"]
            assert when - lost <= 3 * HEARTBEAT + DOWN_SLACK, f"DOWN {when - lost:.2f} s after"
            if fault == "cut":
                assert "missed 3 heartbeats" in down["reason"]
                [record] = await home.jobs(home.owner)
                assert (record["state"], record["unknown"]) == ("BUSY", True)
                assert alive(old_agent) and alive(record["pid"])   # the job runs on, cut off
                await wait_until(home.survivor_sockets, "the old agent waits for a successor")
            gate.touch()
            await wait_until(lambda: not alive(record["pid"]), "the job has ended on ns1")
            if fault == "cut":
                assert not job.done                              # it ended while cut off
                ns.restore()
            up = await wait_until(lambda: _host_in(home, "ns1", "IDLE"), "ns1 is back")
            await wait_until(lambda: job.done, "sched has the job's outcome")
            await wait_until(lambda: not alive(old_agent), "the old agent has handed over")
            return up, old_agent

        up, old_agent = sh.run_until(lose_and_regain())
        assert up["agent"]["pid"] != old_agent
        records = sh.run_until(wait_until(lambda: _harvested(home, 1), "the job is harvested"))
        lines = read_exit_log(exit_log)
        tally = count(records, lines)
        assert tally.clean and (tally.submitted, tally.one_outcome) == (1, 1), tally.summary()
        [line] = lines
        assert (line.state, line.status, line.host, line.macro) == ("EXIT", "7", "ns1", "7")
        [record] = records
        assert (record["outcome"], record["status"], record["attempts"]) == ("EXIT", 7, [])
        # sched keeps no ended job's output (it went to the exit macro): the controller's copy
        output = sh.run_until(home.call("check", "job", str(record["id"]), "-output", "-json"))
        assert "true-outcome" in output["stdout"] and sh.sched.jobs[1].stdout_bytes == len(output["stdout"])
        sh.stop_and_leave(home)


async def _host_in(home: FaultHome, name: str, state: str) -> dict | None:
    host = await home.call("check", "host", name)
    return host if host["state"] == state else None


async def _harvested(home: FaultHome, n: int) -> list[dict]:
    records = await home.jobs(home.owner)
    return records if len(records) == n and all(r["harvested"] for r in records) else []


#: A stand-in for one hop of an ssh connection (tests/tools/relay.py). Two of them in a row
#: stand for ssh and the network: pcontrol starts the first on a pty (and hangs that up at
#: DOWN, which ends it as it ends ssh); stopping the second (SIGSTOP) stalls the connection
#: as a cut network does: nothing passes, and the agent is not told.
RELAY_SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "relay.py"


#: The old agent's own watchdog gives the stalled connection up (pcontrol's heartbeat limit
#: plus its default slack), or it is made to wait for the stall to end (a slack of an hour).
LEARNS = {"by-its-watchdog": "", "when-the-stall-ends": "--watchdog-slack 3600"}


@pytest.mark.parametrize("learns", list(LEARNS))
def test_an_agent_that_learns_late_it_was_left_is_still_taken_over(fault_home: FaultHome,
                                                                   learns: str) -> None:
    """The agent's connection stalls (its relay is stopped): the host goes DOWN by missed
    heartbeats, and the next agent starts while the old one may still think it is
    connected. The job stays held (BUSY, unknown), not DOWN, while the new agent is up.
    by-its-watchdog: the old agent gives the silent connection up by itself, is taken over
    and the outcome arrives while the stall lasts. when-the-stall-ends: the old agent knows
    nothing until the relay runs again (sees pcontrol gone and hangs up); then it waits for
    a successor, and the new agent, still looking, takes it over. Either way the job's
    true outcome is collected, once, and the old agent exits having handed everything over."""
    home = fault_home
    relay = RELAY_SCRIPT
    home.start(("--heartbeat", str(HEARTBEAT), "--retry-min", "0.2", "--retry-max", "0.5",
                "--lease", "120", "--grace", "20"))
    home.call_sync("host", "add", "w1", "-slots", "2", "-connect",
                   f"{PYTHON} {relay} {PYTHON} {relay} {PYTHON} -m pclient --slots 2 "
                   + LEARNS[learns])
    gate = home.path / "gate"
    record = home.call_sync("job", "-host", "w1", "-required", "--", "sh", "-c",
                            gated(str(gate), "echo true-outcome; exit 7"))
    job_id = str(record["id"])

    async def body() -> tuple[dict, dict]:
        started = await wait_until(lambda: _started(home, job_id), "the job runs on w1")
        host = await home.call("check", "host", "w1")
        old_agent = host["agent"]["pid"]
        ssh = host["agent"]["local_pid"]              # the relay pcontrol started
        [stalled] = children_of(ssh)                  # the "network": the second relay
        os.kill(stalled, signal.SIGSTOP)
        try:
            down = await wait_until(lambda: _host_in(home, "w1", "DOWN"), "w1 is DOWN")
            assert "missed 3 heartbeats" in down["reason"]
            back = await wait_until(lambda: _host_in(home, "w1", "IDLE"), "w1's next agent is up")
            assert back["agent"]["pid"] != old_agent
            if learns == "when-the-stall-ends":
                # The new agent did not know the job; it is held all the same.
                record = await home.call("check", "job", job_id)
                assert (record["state"], record["unknown"]) == ("BUSY", True), record
            gate.touch()
            await wait_until(lambda: not alive(started["pid"]), "the job has ended on w1")
            if learns == "by-its-watchdog":
                done = await wait_until(lambda: _done(home, job_id), "the job is DONE")
                assert alive(stalled)                 # while the stall still lasts
            else:
                assert alive(old_agent)               # it still thinks it is connected
                record = await home.call("check", "job", job_id)
                assert (record["state"], record["unknown"]) == ("BUSY", True), record
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stalled, signal.SIGCONT)      # the stall ends: the old agent is told
        if learns == "when-the-stall-ends":
            done = await wait_until(lambda: _done(home, job_id), "the job is DONE")
        await wait_until(lambda: not alive(old_agent), "the old agent has handed over and gone")
        return done, await home.call("check", "host", "w1")

    done, host = asyncio.run(body())
    assert (done["outcome"], done["status"], done["ran_on"]) == ("EXIT", 7, "w1"), done["reason"]
    assert done["attempts"] == []
    assert host["held"] == [] and host["state"] == "IDLE"
    [record] = home.jobs_sync()
    assert record["id"] == done["id"] and record["state"] == "DONE"
    assert "true-outcome" in home.call_sync("stdout", job_id)["stdout"]


async def _started(home: FaultHome, job_id: str) -> dict | None:
    record = await home.call("check", "job", job_id)
    return record if record["state"] == "BUSY" and record["pid"] else None


async def _done(home: FaultHome, job_id: str) -> dict | None:
    record = await home.call("check", "job", job_id)
    return record if record["state"] == "DONE" else None
