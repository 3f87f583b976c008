"""Jobs outlive their controller and their connection: restart and reconcile, a cut
connection taken over by the next agent, a dead agent's jobs DOWN or retried elsewhere,
stop versus stop -kill, a held job whose host never comes back, and a connection that
stalls (DOWN by missed heartbeats): its job stays held while its agent may still offer it,
and is retried only when the grace runs out or the host's agent finds its agent dead."""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

import pytest

from pcontrol.journal import Journal
from pcontrol.model import JobState
from procs import alive
from pcontrol_harness import (LOCAL_AGENT_PY, RELAY_SCRIPT, controller_running, kill_group,
                              make_config, poll, relay_connect, run)


def gated(home: str, name: str, then: str) -> list[str]:
    """A job that runs until the test creates the file `name` in `home`, then runs `then`."""
    gate = os.path.join(home, name)
    return ["--", "sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.01; done; {then}"]


def open_gate(home: str, name: str) -> None:
    Path(home, name).touch()


def done_events(h, job_id: int) -> list[dict]:
    return [e.data for e in h.log.events if e.kind.value == "job" and e.data["id"] == job_id
            and e.data["state"] == "DONE"]


def sockets(home: str) -> list[Path]:
    return list(Path(home, "run").glob("*.sock"))


def test_restart_reconciles_finished_running_and_unknown_jobs(home: str) -> None:
    async def first_life() -> dict:
        async with controller_running(home, stop_kill=False) as h:
            await h.add_local("node1", slots=3)
            meanwhile = await h.submit(*gated(home, "g1", "echo meanwhile; exit 5"))
            later = await h.submit(*gated(home, "g2", "echo later"))
            ids = {"meanwhile": meanwhile, "later": later}
            for name, job_id in list(ids.items()):
                ids[name + "_pid"] = (await h.wait_started(job_id))["pid"]
            return ids

    async def second_life(ids: dict) -> None:
        await poll(lambda: len(sockets(home)) == 1, "the agent waits for a successor")
        open_gate(home, "g1")                   # it finishes while no pcontrol runs
        await poll(lambda: not alive(ids["meanwhile_pid"]), "the first job has ended")
        async with controller_running(home) as h:
            record = await h.cmd("check", "job", ids["later"])
            assert record["state"] == "BUSY"          # unknown until its agent reports
            await h.wait_host("node1", "IDLE")
            ended = await h.wait_job(ids["meanwhile"])
            assert (ended["outcome"], ended["status"], ended["ran_on"]) == ("EXIT", 5, "node1")
            assert (await h.cmd("stdout", ids["meanwhile"]))["stdout"] == "meanwhile\n"
            later = await h.cmd("check", "job", ids["later"])
            assert (later["state"], later["unknown"], later["pid"]) == \
                ("BUSY", False, ids["later_pid"])
            assert (await h.cmd("check", "host", "node1"))["running"] == [ids["later"]]
            open_gate(home, "g2")
            record = await h.wait_job(ids["later"])
            assert (record["outcome"], record["status"]) == ("EXIT", 0)
            assert (await h.cmd("stdout", ids["later"]))["stdout"] == "later\n"
            assert len(done_events(h, ids["meanwhile"])) == 1
            assert len(done_events(h, ids["later"])) == 1
            await poll(lambda: not sockets(home), "the survivor has handed over and gone")

    run(second_life(run(first_life())))


def test_a_cut_connection_is_taken_over_by_the_next_agent(home: str) -> None:
    """kill -9 of the agent's connection (ssh, here a relay): the agent keeps the job, the
    host goes DOWN, its retry starts a new agent that takes the job over."""
    async def body() -> None:
        config = make_config(retry_min=0.2, retry_max=0.4)
        async with controller_running(home, config) as h:
            await h.cmd("host", "add", "w1", "-slots", "2", "-connect", relay_connect())
            host = await h.wait_host("w1", "IDLE")
            job_id = await h.submit(*gated(home, "g", "echo survived"))
            started = await h.wait_started(job_id)
            mark = len(h.log.events)
            os.kill(host["agent"]["local_pid"], signal.SIGKILL)     # the relay, not the agent
            down = await h.wait_host("w1", "DOWN", after=mark)
            assert "EOF" in down["reason"]
            record = await h.cmd("check", "job", job_id)
            assert (record["state"], record["unknown"]) == ("BUSY", True)
            assert "unknown" in (await h.reply("check", "job", job_id)).text
            assert alive(started["pid"]) and alive(host["agent"]["pid"])
            back = await h.wait_host("w1", "IDLE", after=mark)    # the backoff retry
            assert back["agent"]["pid"] != host["agent"]["pid"]
            record = await h.cmd("check", "job", job_id)
            assert (record["state"], record["unknown"], record["pid"]) == \
                ("BUSY", False, started["pid"])
            open_gate(home, "g")
            ended = await h.wait_job(job_id)
            assert (ended["outcome"], ended["status"], ended["ran_on"]) == ("EXIT", 0, "w1")
            assert (await h.cmd("stdout", job_id))["stdout"] == "survived\n"
            assert len(done_events(h, job_id)) == 1
            await poll(lambda: not alive(host["agent"]["pid"]), "the old agent has gone")
    run(body())


def test_killing_a_job_whose_agent_is_out_of_reach(home: str) -> None:
    async def body() -> None:
        config = make_config(retry_min=60.0)
        async with controller_running(home, config) as h:
            await h.cmd("host", "add", "w1", "-connect", relay_connect())
            host = await h.wait_host("w1", "IDLE")
            job_id = await h.submit("--", "sleep", "30")
            started = await h.wait_started(job_id)
            mark = len(h.log.events)
            os.kill(host["agent"]["local_pid"], signal.SIGKILL)
            await h.wait_host("w1", "DOWN", after=mark)
            text = (await h.reply("kill", job_id)).text
            assert "once its agent reports it" in text
            await h.cmd("host", "retry", "w1")
            ended = await h.wait_job(job_id)
            assert ended["outcome"] == "KILLED" and not alive(started["pid"])
    run(body())


@pytest.mark.parametrize("retry", [0, 1])
def test_kill_9_of_an_agent_mid_job(home: str, retry: int) -> None:
    """The agent dies: its host goes DOWN at once; the job ends DOWN, or with -retry 1
    runs again and finishes on the other host."""
    async def body() -> None:
        async with controller_running(home) as h:
            first = await h.add_local("h1")
            await h.add_local("h2")
            job_id = await h.submit("-host", "h1", "-retry", retry, *gated(home, "g", "echo ok"))
            started = await h.wait_started(job_id)
            assert started["ran_on"] == "h1"
            mark = len(h.log.events)
            os.kill(first["agent"]["pid"], signal.SIGKILL)
            down = await h.wait_host("h1", "DOWN", after=mark)
            try:
                if retry:
                    again = (await h.log.wait_for(
                        lambda e: e.kind.value == "job" and e.data["id"] == job_id
                        and e.seq > h.log.events[mark - 1].seq and e.data["state"] == "BUSY"
                        and e.data["ran_on"] == "h2", what="the retry started")).data
                    assert again["ran_on"] == "h2" and again["pid"] != started["pid"]
                    open_gate(home, "g")
                    ended = await h.wait_job(job_id)
                    assert (ended["outcome"], ended["ran_on"]) == ("EXIT", "h2")
                    assert ended["retries_left"] == 0
                    [attempt] = ended["attempts"]
                    assert (attempt["host"], attempt["outcome"]) == ("h1", "DOWN")
                    assert "died" in attempt["reason"] and attempt["pid"] == started["pid"]
                    text = (await h.reply("check", "job", job_id)).text
                    assert "retry:     1 (0 left)" in text and "attempt 1: h1 DOWN" in text
                    states = h.log.job_states(job_id)
                    assert "PENDING" in states[states.index("BUSY"):]    # requeued
                else:
                    ended = await h.wait_job(job_id)
                    assert ended["outcome"] == "DOWN" and "died" in ended["reason"]
                    assert ended["attempts"] == []
                assert len(done_events(h, job_id)) == 1
                assert "EOF" in down["reason"]
                # The dead agent's job is an orphan; the host's next agent ends it.
                await h.cmd("host", "retry", "h1")
                await h.wait_host("h1", "IDLE", after=mark)
                await poll(lambda: not alive(started["pid"]), "the orphan is killed")
            finally:
                kill_group(started["pid"])
    run(body())


def test_stop_leaves_jobs_to_the_agents_and_stop_kill_ends_them(home: str) -> None:
    async def life(kill: bool) -> dict:
        async with controller_running(home, stop_kill=kill) as h:
            if "node1" not in h.controller.hosts:
                await h.add_local("node1", slots=2)
                await h.cmd("host", "add", "node2", "-connect", "unused")
                await h.cmd("host", "off", "node2")
            else:
                await h.wait_host("node1", "IDLE")
            running = await h.submit("-host", "node1", "-required", "--", "sleep", "30")
            started = await h.wait_started(running)
            pending = await h.submit("-host", "node2", "-required", "--", "true")
            agent = (await h.cmd("check", "host", "node1"))["agent"]["pid"]
            return {"running": running, "pid": started["pid"], "pending": pending,
                    "agent": agent}

    kept = run(life(kill=False))
    try:
        assert alive(kept["pid"]) and alive(kept["agent"])
        journal = Journal(Path(home, "pcontrol.db"))
        states = {job.id: job.state for job in journal.load().jobs}
        journal.close()
        assert states[kept["running"]] is JobState.BUSY
        assert states[kept["pending"]] is JobState.PENDING
        killed = run(life(kill=True))      # takes the first job over, then stops with -kill
        journal = Journal(Path(home, "pcontrol.db"))
        jobs = {job.id: job for job in journal.load().jobs}
        journal.close()
        for job_id in (kept["running"], killed["running"], killed["pending"]):
            assert (jobs[job_id].state, jobs[job_id].outcome.value) == ("DONE", "KILLED")
        assert "stop -kill" in jobs[killed["pending"]].reason
        assert not alive(kept["pid"]) and not alive(killed["pid"])
        assert not alive(killed["agent"])
    finally:
        kill_group(kept["pid"])


def test_a_job_whose_host_never_comes_back_ends_down_after_the_grace(home: str) -> None:
    """The host's agent cannot be started again: its job waits out the grace, ends DOWN;
    the surviving agent's lease runs out meanwhile and it ends the job (no orphan)."""
    broken = os.path.join(home, "broken")
    connect = f"sh -c 'test -e {broken} && exit 1; exec \"$0\" \"$@\"' " + \
        relay_connect()

    async def first_life() -> tuple[int, int, int]:
        async with controller_running(home, make_config(lease=1.0), stop_kill=False) as h:
            await h.cmd("host", "add", "w1", "-connect", connect)
            host = await h.wait_host("w1", "IDLE")
            job_id = await h.submit("--", "sleep", "30")
            started = await h.wait_started(job_id)
            return job_id, started["pid"], host["agent"]["pid"]

    async def second_life(job_id: int, pid: int, agent: int) -> None:
        config = make_config(reconcile_grace=0.5)
        async with controller_running(home, config) as h:
            ended = await h.wait_job(job_id)
            assert ended["outcome"] == "DOWN"
            assert "no agent on w1 reported it within 0.5 s" in ended["reason"]
            host = await h.cmd("check", "host", "w1")
            assert host["state"] == "DOWN" and "exited before the handshake" in host["reason"]
            await poll(lambda: not alive(agent) and not alive(pid),
                       "the lease of 1 s ran out and the survivor ended its job")

    job_id, pid, agent = run(first_life())
    Path(broken).touch()
    try:
        run(second_life(job_id, pid, agent))
    finally:
        kill_group(pid)


# -- a stalled connection: DOWN by missed heartbeats, the agent unaware --------------------------


def stalling_connect(*agent_args: str) -> str:
    """Two relays in a row: pcontrol's pty ends the first at DOWN (as it ends ssh); stopping
    the second (SIGSTOP) stalls the connection as a cut network does, the agent untold."""
    return f"{LOCAL_AGENT_PY} {shlex.quote(str(RELAY_SCRIPT))} --no-stderr " + relay_connect(*agent_args)


def network_of(host: dict) -> int:
    """The second relay of a stalling_connect host: the one to stop."""
    ssh = host["agent"]["local_pid"]
    [network] = [int(w) for w in open(f"/proc/{ssh}/task/{ssh}/children").read().split()]
    return network


async def stall(h, name: str, host: dict) -> tuple[int, int, dict]:
    """Stop the host's network relay; wait for DOWN (missed heartbeats) and its next agent."""
    network = network_of(host)
    mark = len(h.log.events)
    os.kill(network, signal.SIGSTOP)
    down = await h.wait_host(name, "DOWN", after=mark)
    assert "missed 3 heartbeats" in down["reason"]
    back = await h.wait_host(name, "IDLE", after=mark)
    assert back["agent"]["pid"] != host["agent"]["pid"]
    return network, mark, down


def end_stall(network: int, agent: int) -> None:
    """Clean up: the old agent is ended, its relay let go."""
    for pid, sig in ((agent, signal.SIGTERM), (network, signal.SIGCONT)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def test_a_job_lost_by_silence_stays_held_and_retries_only_when_the_grace_runs_out(home: str) -> None:
    """The old agent never learns it was left (its watchdog slack is an hour): w1 comes back
    with a new agent that does not know the job, but the job is held (BUSY, unknown), not
    retried, while its first run may still be going on; when the grace runs out it runs
    again (-retry 1) on h2, and that run's outcome is its only one."""
    async def body() -> None:
        config = make_config(retry_min=0.2, retry_max=0.4, reconcile_grace=2.0)
        async with controller_running(home, config) as h:
            await h.cmd("host", "add", "w1", "-slots", "2", "-connect",
                        stalling_connect("--watchdog-slack", "3600"))
            first = await h.wait_host("w1", "IDLE")
            await h.add_local("h2")
            job_id = await h.submit("-host", "w1", "-retry", 1, *gated(home, "g", "echo ran"))
            started = await h.wait_started(job_id)
            assert started["ran_on"] == "w1"
            network, mark, down = await stall(h, "w1", first)
            try:
                record = await h.cmd("check", "job", job_id)
                assert (record["state"], record["unknown"], record["retries_left"]) == \
                    ("BUSY", True, 1)
                assert (await h.cmd("check", "host", "w1"))["held"] == [job_id]
                assert alive(started["pid"]) and alive(first["agent"]["pid"])
                again = (await h.log.wait_for(
                    lambda e: e.kind.value == "job" and e.data["id"] == job_id
                    and e.data["state"] == "BUSY" and e.data["ran_on"] == "h2"
                    and e.data["pid"] is not None, what="the retry runs on h2")).data
                [attempt] = again["attempts"]
                assert (attempt["host"], attempt["outcome"]) == ("w1", "DOWN")
                assert "no agent on w1 reported it within 2 s" in attempt["reason"]
                assert attempt["ended"] - down["since"] >= 2.0 - 0.05   # not before the grace
                states = h.log.job_states(job_id)
                assert states[states.index("BUSY"):].count("PENDING") == 1
                open_gate(home, "g")
                ended = await h.wait_job(job_id)
                assert (ended["outcome"], ended["status"], ended["ran_on"]) == ("EXIT", 0, "h2")
                assert len(done_events(h, job_id)) == 1
                assert (await h.cmd("check", "host", "w1"))["held"] == []
            finally:
                end_stall(network, first["agent"]["pid"])
                kill_group(started["pid"])
    run(body())


@pytest.mark.parametrize("retry", [0, 1])
def test_a_job_lost_by_silence_whose_agent_dies_is_lost_without_waiting_for_the_grace(
        home: str, retry: int) -> None:
    """The old agent is killed while the job is held: the host's new agent, still looking
    for it, finds no survivor and no live agent, kills the orphaned job and reports it lost;
    the job ends DOWN (or runs again on h2) at once, not after the grace of 60 s."""
    async def body() -> None:
        config = make_config(retry_min=0.2, retry_max=0.4, reconcile_grace=60.0)
        async with controller_running(home, config) as h:
            await h.cmd("host", "add", "w1", "-slots", "2", "-connect",
                        stalling_connect("--watchdog-slack", "3600"))
            first = await h.wait_host("w1", "IDLE")
            await h.add_local("h2")
            job_id = await h.submit("-host", "w1", "-retry", retry, *gated(home, "g", "echo ran"))
            started = await h.wait_started(job_id)
            network, mark, down = await stall(h, "w1", first)
            try:
                record = await h.cmd("check", "job", job_id)
                assert (record["state"], record["unknown"]) == ("BUSY", True)
                os.kill(first["agent"]["pid"], signal.SIGKILL)
                if retry:
                    again = (await h.log.wait_for(
                        lambda e: e.kind.value == "job" and e.data["id"] == job_id
                        and e.data["state"] == "BUSY" and e.data["ran_on"] == "h2",
                        what="the retry runs on h2")).data
                    reason = again["attempts"][0]["reason"]
                    open_gate(home, "g")
                    ended = await h.wait_job(job_id)
                    assert (ended["outcome"], ended["ran_on"]) == ("EXIT", "h2")
                else:
                    ended = await h.wait_job(job_id)
                    assert ended["outcome"] == "DOWN"
                    reason = ended["reason"]
                assert "on host w1" in reason and "no other agent is alive" in reason
                assert len(done_events(h, job_id)) == 1
                await poll(lambda: not alive(started["pid"]), "the orphan is killed")
            finally:
                end_stall(network, first["agent"]["pid"])
                kill_group(started["pid"])
    run(body())


def test_a_job_lost_by_silence_gets_its_true_outcome_from_an_agent_that_learns_late(
        home: str) -> None:
    """The old agent learns it was left only when the stall ends; the host's new agent,
    told by every ping that the job is held, takes it over then: the job carries on as
    running on w1 and ends with its real outcome."""
    async def body() -> None:
        config = make_config(retry_min=0.2, retry_max=0.4, reconcile_grace=30.0)
        async with controller_running(home, config) as h:
            await h.cmd("host", "add", "w1", "-slots", "2", "-connect",
                        stalling_connect("--watchdog-slack", "3600"))
            first = await h.wait_host("w1", "IDLE")
            job_id = await h.submit("-host", "w1", "-retry", 1, *gated(home, "g", "exit 3"))
            started = await h.wait_started(job_id)
            network, mark, down = await stall(h, "w1", first)
            try:
                record = await h.cmd("check", "job", job_id)
                assert (record["state"], record["unknown"]) == ("BUSY", True)
                os.kill(network, signal.SIGCONT)       # the stall ends: the agent is told
                carried = (await h.log.wait_for(
                    lambda e: e.kind.value == "job" and e.data["id"] == job_id
                    and e.seq > h.log.events[mark - 1].seq and not e.data["unknown"],
                    what="the job is found running")).data
                assert (carried["state"], carried["ran_on"], carried["pid"]) == \
                    ("BUSY", "w1", started["pid"])
                assert (await h.cmd("check", "host", "w1"))["running"] == [job_id]
                open_gate(home, "g")
                ended = await h.wait_job(job_id)
                assert (ended["outcome"], ended["status"], ended["attempts"]) == ("EXIT", 3, [])
                assert len(done_events(h, job_id)) == 1
                await poll(lambda: not alive(first["agent"]["pid"]), "the old agent has gone")
            finally:
                end_stall(network, first["agent"]["pid"])
                kill_group(started["pid"])
    run(body())


#: An agent of the previous version: it takes nothing over late and its `resumed` does not
#: say `looks_again`.
OLDER_AGENT = r'''
import json, os, sys
def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
send({"type": "hello", "version": 2, "host": "old", "pid": os.getpid(), "clock": 0.0,
      "slots": 2, "agent": "pclient 0.2.0"})
for line in sys.stdin:
    message = json.loads(line)
    if message["type"] == "auth":
        send({"type": "resumed", "running": [], "finished": [], "survivors": 0})
    elif message["type"] == "ping":
        send({"type": "pong", "seq": message["seq"], "clock": 0.0, "running": 0})
    elif message["type"] == "bye":
        break
'''


def test_a_job_lost_by_silence_is_lost_at_once_when_the_next_agent_cannot_look_again(
        home: str) -> None:
    """The host comes back with an older agent, which would never look for survivors
    again: waiting for the grace would gain nothing, so the job it does not know is lost
    at once, as before."""
    older = os.path.join(home, "older_agent.py")
    with open(older, "w") as f:
        f.write(OLDER_AGENT)
    flag = os.path.join(home, "use-older")
    connect = (f"sh -c 'test -e {flag} && exec {LOCAL_AGENT_PY} {older}; "
               f"exec \"$0\" \"$@\"' " + stalling_connect("--watchdog-slack", "3600"))

    async def body() -> None:
        config = make_config(retry_min=0.2, retry_max=0.4, reconcile_grace=60.0)
        async with controller_running(home, config) as h:
            await h.cmd("host", "add", "w1", "-slots", "2", "-connect", connect)
            first = await h.wait_host("w1", "IDLE")
            job_id = await h.submit("-host", "w1", *gated(home, "g", "true"))
            started = await h.wait_started(job_id)
            Path(flag).touch()
            network = network_of(first)
            try:
                await stall(h, "w1", first)
                ended = await h.wait_job(job_id)     # not held for the grace of 60 s
                assert ended["outcome"] == "DOWN" and "does not know it" in ended["reason"]
                assert (await h.cmd("check", "host", "w1"))["agent"]["agent"] == "pclient 0.2.0"
            finally:
                end_stall(network, first["agent"]["pid"])
                kill_group(started["pid"])
    run(body())


def test_a_retry_on_the_host_that_still_runs_its_first_attempt_is_a_job_of_its_own(home: str) -> None:
    """A retry can reach the very agent that still runs (or took over) the job's earlier
    attempt (a --grace shorter than the lease). Each attempt has its own name in the agent
    protocol (`17`, then `17.1`), so the agent runs the retry beside the old attempt instead
    of refusing it, and the old attempt's outcome is not taken for the retry's."""
    first = os.path.join(home, "first-ran")
    gate = os.path.join(home, "gate")
    script = (f"if [ -e {first} ]; then echo second; exit 0; fi; touch {first}; "
              f"while [ ! -e {gate} ]; do sleep 0.01; done; echo first; exit 5")

    async def body() -> dict:
        async with controller_running(home) as h:
            await h.add_local("h1", slots=2)
            job_id = await h.submit("-host", "h1", "-required", "-retry", "1", "--", "sh", "-c", script)
            await h.wait_started(job_id)
            await poll(lambda: os.path.exists(first), "attempt 1 is under way")
            controller = h.controller
            job = controller.jobs[job_id]
            host = controller.hosts["h1"]
            host.running.discard(job_id)      # contact with attempt 1 is lost (as after the grace)
            controller._job_lost(job, "test: the first attempt is out of reach")
            assert job.agent_word == f"{job_id}.1"
            done = await h.wait_job(job_id)    # the retry ran beside the first attempt
            open_gate(home, "gate")            # now the first attempt ends too: ignored
            await poll(lambda: not any(alive(int(p)) for p in _pids_of(first)), "attempt 1 ended")
            again = await h.cmd("check", "job", job_id)
            return {"done": done, "again": again, "stdout": (await h.cmd("stdout", job_id))["stdout"]}

    result = run(body())
    assert (result["done"]["outcome"], result["done"]["status"]) == ("EXIT", 0), result["done"]["reason"]
    assert result["stdout"] == "second\n"
    assert len(result["again"]["attempts"]) == 1
    assert (result["again"]["outcome"], result["again"]["status"]) == ("EXIT", 0)


def _pids_of(marker: str) -> list[str]:
    """Pids of live processes whose command line names `marker` (the first attempt's shell)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(entry)
            except OSError:
                pass
    return found


@pytest.mark.parametrize("word, number", [("17", 17), ("17.1", 17), ("17.12", 17), ("x", -1),
                                          ("17.", 17), ("17.x", -1), (".1", -1), ("²", -1), ("", -1)])
def test_agent_words_name_a_job_and_its_attempt(word: str, number: int) -> None:
    from pcontrol.reports import _job_number

    assert _job_number(word) == number
