"""Responsiveness: no single loop turn does an unbounded amount of pcontrol's own work.

Each test asserts a bound by counting (jobs started, timers fired, messages sent, rows
written per turn; entries a heap operation touches), never by timing: dispatching many
jobs, firing many timers, telling many messages and writing many rows all happen in
batches with the loop getting control back in between; a checkpoint of the journal runs in
a worker thread while the writes wait; an agent's start runs in a worker thread while the
loop goes on. Also the diagnostics that measure all this (loadwatch's TurnWatch, GcWatch).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
import tty
from pathlib import Path
from typing import Any

import pytest

from pcontrol import agentlink, spareagent
from pcontrol.agentlink import ConnectFailure, ConnectOutcome, connect_agent
from pcontrol.controller import FILL_BATCH, TIMER_BATCH, Controller, JobSpec
from pcontrol.hosts import _Runtime
from pcontrol.journal import Journal
from pcontrol.loadwatch import GcWatch, LoopWatch, TurnWatch, histogram_quantile
from pcontrol.model import Host, HostState, JobState, Outcome
from pcontrol.outbox import RELEASE_BATCH
from pcontrol.wire import Event, EventKind
from pcontrol_harness import WAIT, make_config, poll, run

#: Most loop turns any test here waits through before it gives up.
MAX_TURNS = 100_000


class Collector:
    """A subscriber that keeps the events it is sent."""

    owner = None
    interests = None      # every kind of event (the Subscriber protocol's `subscribe -only`)
    brief = False         # whole job records (`subscribe -brief`: short ones)

    def __init__(self) -> None:
        self.events: list[Event] = []

    def send_event(self, event: Event) -> None:
        self.events.append(event)


def connected_host(controller: Controller, name: str, slots: int) -> Host:
    """A host the table believes connected (no agent: what it is sent goes nowhere)."""
    host = Host(name=name, slots=slots, state=HostState.IDLE, agent_slots=slots)
    controller.host_table.hosts[name] = host
    controller.host_table._runtime[name] = _Runtime(ready=True)
    return host


async def turns_until(condition: Any, what: str, step: Any = None) -> int:
    """Let the loop turn until `condition()`; calls `step()` after each turn; the turns."""
    for turn in range(1, MAX_TURNS):
        await asyncio.sleep(0)
        if step is not None:
            step()
        if condition():
            return turn
    raise AssertionError(f"{what} did not happen within {MAX_TURNS} loop turns")


# -- dispatch -----------------------------------------------------------------------------

def test_a_host_with_many_free_slots_is_filled_a_batch_per_turn() -> None:
    slots = 3 * FILL_BATCH + 10

    async def body() -> list[int]:
        controller = Controller(None, make_config())
        await controller.start()
        for number in range(2 * slots):                  # no host yet: all pending
            controller.submit(JobSpec(argv=["true", str(number)]))
        host = connected_host(controller, "big", slots)
        controller.host_connected(host)
        counts = [len(host.running)]
        await turns_until(lambda: len(host.running) == slots, "the host filled up",
                          lambda: counts.append(len(host.running)))
        assert controller.status()["jobs"]["PENDING"] == slots
        await controller.stop()
        return counts

    counts = run(body())
    assert counts[0] == FILL_BATCH                       # the turn it came up in
    steps = [b - a for a, b in zip(counts, counts[1:])]
    assert max(steps) <= FILL_BATCH and len([s for s in steps if s]) == 3


def test_a_filled_host_takes_new_jobs_at_once_and_a_refill_of_a_gone_host_is_dropped() -> None:
    async def body() -> None:
        controller = Controller(None, make_config())
        await controller.start()
        for number in range(3 * FILL_BATCH):
            controller.submit(JobSpec(argv=["true", str(number)]))
        host = connected_host(controller, "big", 2 * FILL_BATCH)
        controller.host_connected(host)
        assert len(host.running) == FILL_BATCH
        controller.host_table.hosts.pop("big")           # gone before its next batch
        await turns_until(lambda: not controller._refill, "the refill was dropped")
        assert len(host.running) == FILL_BATCH
        await controller.stop()
    run(body())


# -- timers -------------------------------------------------------------------------------

def test_pending_timeouts_fire_a_batch_per_turn() -> None:
    count = 3 * TIMER_BATCH + 5

    async def body() -> list[int]:
        controller = Controller(None, make_config())
        await controller.start()
        for number in range(count):                      # no host: each times out
            controller.submit(JobSpec(argv=["true", str(number)], pending=0.0))
        done = [0]

        def note() -> None:
            done.append(controller.status()["jobs"]["DONE"])

        await turns_until(lambda: done[-1] == count, "every pending timeout fired", note)
        await controller.stop()
        return done

    done = run(body())
    steps = [b - a for a, b in zip(done, done[1:])]
    assert max(steps) <= TIMER_BATCH and len([s for s in steps if s]) >= 4


# -- the outbox ---------------------------------------------------------------------------

def test_events_go_out_a_batch_per_turn_in_order_and_durable_waits_for_them() -> None:
    count = 3 * RELEASE_BATCH + 7

    async def body() -> tuple[list[int], list[int]]:
        controller = Controller(None, make_config())
        await controller.start()
        collector = Collector()
        controller.subscribe(collector)
        for number in range(count):
            controller.submit(JobSpec(argv=["true", str(number)]))
        sent = [len(collector.events)]
        await turns_until(lambda: len(collector.events) == count, "every event went out",
                          lambda: sent.append(len(collector.events)))
        ids = [event.data["id"] for event in collector.events]
        # durable() returns only once what was queued before it is sent, batches or not.
        for number in range(count):
            controller.submit(JobSpec(argv=["true", str(number)]))
        await asyncio.wait_for(controller.durable(), WAIT)
        assert len(collector.events) == 2 * count
        await controller.stop()
        return sent, ids

    sent, ids = run(body())
    steps = [b - a for a, b in zip(sent, sent[1:])]
    assert sent[0] == 0 and max(steps) <= RELEASE_BATCH and len([s for s in steps if s]) >= 4
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def _one_host(home: str) -> tuple[Journal, Controller, Any, list[Any]]:
    """A started controller with a journal in `home` and one connected host "h" of one slot,
    whose messages to its agent are kept in the list returned."""
    journal = Journal(os.path.join(home, "j.db"))
    controller = Controller(journal, make_config())
    await controller.start()
    host = connected_host(controller, "h", 1)
    controller.host_connected(host)
    sent: list[Any] = []
    controller.host_table.send = lambda _host, message: sent.append(message)  # type: ignore[method-assign]
    return journal, controller, host, sent


def test_a_run_goes_out_in_the_turn_of_the_write_that_covers_it(home: str) -> None:
    """A job's `run` is queued before its change is marked (Controller._start): the write
    that covers it releases it in its own turn, not in a turn of the outbox's after it."""
    async def body() -> int:
        journal, controller, host, sent = await _one_host(home)
        await asyncio.sleep(0)
        commits = journal.commits
        job = controller.submit(JobSpec(argv=["true"]))
        assert job.state is JobState.BUSY and not sent
        turns = await turns_until(lambda: bool(sent), "the run went out")
        assert journal.commits == commits + 1 and not journal.dirty
        await controller.stop()
        journal.close()
        return turns

    assert run(body()) == 1


def test_no_run_goes_out_before_its_job_is_written(home: str) -> None:
    """The `run` of a new job waits for the job's row (its stamp is the job's change), even
    while the journal cannot write: an agent never runs a job the journal does not have."""
    async def body() -> None:
        journal, controller, host, sent = await _one_host(home)
        await asyncio.sleep(0)
        journal._db.close()                     # every write fails from now on
        job = controller.submit(JobSpec(argv=["true"]))
        await turns_until(lambda: journal.failure is not None, "the write failed")
        for _ in range(3):
            await asyncio.sleep(0)
        assert job.state is JobState.BUSY and not sent
        controller.journal = None               # stop without the broken journal
        await controller.stop()

    run(body())


def test_no_drop_goes_out_before_its_job_is_gone_from_the_journal(home: str) -> None:
    """The agent is told to remove a forgotten job's spooled output only once the journal
    no longer has the job (it would otherwise have a job whose output is gone)."""
    async def body() -> None:
        journal, controller, host, sent = await _one_host(home)
        job = controller.submit(JobSpec(argv=["true"], spool=True))
        host.running.discard(job.id)
        job.spooled = True
        controller._finish(job, Outcome.EXIT, status=0)
        await turns_until(lambda: not journal.dirty, "the job was written")
        sent.clear()
        journal._db.close()                     # every write fails from now on
        controller._forget(job)
        await turns_until(lambda: journal.failure is not None, "the write failed")
        for _ in range(3):
            await asyncio.sleep(0)
        assert not sent
        controller.journal = None               # stop without the broken journal
        await controller.stop()

    run(body())


# -- the journal --------------------------------------------------------------------------

def test_a_batch_ends_early_on_big_outputs(home: str) -> None:
    async def body() -> None:
        journal = Journal(os.path.join(home, "j.db"), batch_rows=100, batch_bytes=1000_000)
        controller = Controller(journal, make_config())
        await controller.start()
        await asyncio.sleep(0)
        jobs = [controller.submit(JobSpec(argv=["true"])) for _ in range(10)]
        for job in jobs:
            job.stdout = "x" * 300_000
            journal.job_changed(job)
        journal.flush()
        for job in jobs:                        # now only their outputs change
            job.stderr = "y" * 300_000
            journal.job_changed(job)
        assert journal.backlog == 10
        assert journal.write_batch()
        assert journal.backlog == 10 - 2        # 2 x 600 kB pass 1 MB: the batch ends
        journal.flush()
        assert journal.backlog == 0 and journal.row_count() == 10
        await controller.stop()
        journal.close()
    run(body())


@pytest.mark.parametrize("log_too_long", [False, True])
def test_a_checkpoint_runs_in_a_thread_and_holds_the_writes_only_for_a_long_log(
        home: str, monkeypatch: pytest.MonkeyPatch, log_too_long: bool) -> None:
    from pcontrol import journal as journal_module
    entered = threading.Event()
    proceed = threading.Event()
    threads: list[str] = []
    original = journal_module._Checkpointer._checkpoint

    def held_checkpoint(self: Any) -> None:
        threads.append(threading.current_thread().name)
        entered.set()
        proceed.wait(WAIT)
        original(self)

    monkeypatch.setattr(journal_module._Checkpointer, "_checkpoint", held_checkpoint)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        journal = Journal(os.path.join(home, "j.db"), batch_rows=50,
                          checkpoint_bytes=100 * journal_module.PAGE_BYTES)
        journal._checkpoints.exclusive = log_too_long     # as the last checkpoint found
        controller = Controller(journal, make_config())
        await controller.start()
        for number in range(1000):
            controller.submit(JobSpec(argv=["true", str(number)]))
        await turns_until(lambda: journal._checkpoints.running, "a checkpoint began")
        assert await loop.run_in_executor(None, entered.wait, WAIT)
        commits = journal.commits
        for _ in range(5):                      # the loop turns meanwhile
            await asyncio.sleep(0)
        if log_too_long:                        # the writes wait for the checkpoint
            assert journal.commits == commits and journal.dirty
        else:                                   # the writes go on
            assert journal.commits > commits
        proceed.set()
        await turns_until(lambda: not journal.dirty, "everything was written")
        # the held checkpoint ends in its thread, maybe after the writes (when not held)
        await poll(lambda: journal._checkpoints.runs >= 1, "the checkpoint ran")
        await controller.stop()
        journal.close()

    run(body())
    assert threads and all(name.startswith("pcontrol-checkpoint") for name in threads)


def test_the_log_stays_small_and_checkpoints_copy_it_all(home: str) -> None:
    async def body() -> None:
        journal = Journal(os.path.join(home, "j.db"), checkpoint_bytes=1024 * 1024,
                          wal_pause_bytes=2 * 1024 * 1024)
        controller = Controller(journal, make_config())
        await controller.start()
        for _ in range(4):
            for number in range(4000):
                controller.submit(JobSpec(argv=["true", str(number)]))
            await poll(lambda: not journal.dirty and not journal._checkpoints.running,
                       "the burst was written")    # (a checkpoint thread may still run)
        wal = Path(str(journal.path) + "-wal").stat().st_size
        assert journal._checkpoints.runs >= 2
        # Without checkpoints the log would hold all 16,000 rows (~12 MB): it restarted.
        assert wal < 4 * 1024 * 1024, wal
        await controller.stop()
        journal.close()
    run(body())


def test_a_hosts_idle_busy_swings_are_not_written(home: str) -> None:
    async def body() -> None:
        journal = Journal(os.path.join(home, "j.db"))
        controller = Controller(journal, make_config())
        await controller.start()
        host = connected_host(controller, "h1", 1)
        controller.host_changed(host)
        assert journal.first_unwritten("host", "h1") is not None     # its configuration
        journal.flush()
        for state in (HostState.BUSY, HostState.IDLE, HostState.BUSY):
            host.state = state
            controller.host_changed(host)
        assert journal.first_unwritten("host", "h1") is None
        host.enabled = False                                         # configuration again
        controller.host_changed(host)
        assert journal.first_unwritten("host", "h1") is not None
        await controller.stop()
        journal.close()
    run(body())


# -- starting an agent --------------------------------------------------------------------

def _slow_exec() -> None:
    """preexec_fn of a child that takes its time before it execs (a loaded machine)."""
    time.sleep(0.3)
    tty.setraw(0)


def test_an_agent_starts_in_a_thread_while_the_loop_goes_on(home: str,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(spareagent, "_raw_terminal", _slow_exec)
    spawn = agentlink._spawn_child
    seen: dict[str, Any] = {}
    turns = [0]

    def watched(*args: Any) -> Any:
        seen["thread"] = threading.current_thread()
        seen["turns_before"] = turns[0]
        try:
            return spawn(*args)
        finally:
            seen["turns_after"] = turns[0]

    monkeypatch.setattr(agentlink, "_spawn_child", watched)

    async def ticker() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    async def body() -> int:
        ticking = asyncio.get_running_loop().create_task(ticker())
        link = await connect_agent("a1", [sys.executable, "-m", "pclient"], timeout=WAIT,
                                   on_message=lambda *_: None, on_lost=lambda *_: None)
        ticking.cancel()
        pid = link.pid
        await link.close(reason="test over", grace=3.0)
        return pid

    run(body())
    assert seen["thread"] is not threading.main_thread()
    # The child took 0.3 s to exec; the loop kept turning all the while.
    assert seen["turns_after"] - seen["turns_before"] > 10


@pytest.mark.parametrize("pipes", [False, True], ids=["pty", "pipes"])
def test_a_failed_exec_is_a_connect_failure(tmp_path: Path, pipes: bool) -> None:
    """On a pty (ssh) or on pipes (a local agent: pcontrol.spareagent.start_on_pipes), an exec's
    failure is NOT_FOUND, and what the start says before it exits is the reason of its EOF."""
    script = tmp_path / "agent"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)

    async def attempt(argv: list[str]) -> ConnectFailure:
        with pytest.raises(ConnectFailure) as caught:
            await connect_agent("a1", argv, timeout=WAIT, on_message=lambda *_: None,
                                on_lost=lambda *_: None, pipes=pipes)
        return caught.value

    failed = run(attempt([str(script)]))
    errno_text = "" if pipes else "[Errno 2] "   # (ptyprocess's error, as it always read)
    assert (failed.outcome, failed.reason) == (ConnectOutcome.NOT_FOUND,
                                               f"cannot start '{script}': {errno_text}No such file or directory")
    missing = run(attempt([str(tmp_path / "nothing")]))
    assert missing.outcome is ConnectOutcome.NOT_FOUND
    assert missing.reason.startswith(f"cannot start '{tmp_path / 'nothing'}': ")
    said = run(attempt(["sh", "-c", "echo on stdout; echo and on stderr >&2; exit 1"]))
    assert (said.outcome, said.reason) == (ConnectOutcome.EOF, "sh exited before the handshake: "
                                           "on stdout | and on stderr")


def test_a_local_agent_runs_on_pipes_in_a_session_of_its_own(home: str) -> None:
    """No terminal between pcontrol and a local agent: its stdin is a pipe, its stdout and
    stderr one other pipe, it leads a session (so its group is signalled as on a pty), at
    its niceness; it ends on bye, and on our hang-up it sees EOF."""
    async def body(polite: bool) -> tuple[list[str], bool, int]:
        lost: list[str] = []
        link = await connect_agent("a1", [sys.executable, "-m", "pclient"], timeout=WAIT,
                                   on_message=lambda *_: None, on_lost=lambda _, why: lost.append(why),
                                   nice=3, pipes=True)
        fds = [os.readlink(f"/proc/{link.pid}/fd/{fd}") for fd in (0, 1, 2)]
        stat = Path(f"/proc/{link.pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert link.agent_is_child and int(stat[3]) == link.pid and int(stat[16]) == 3
        if polite:
            await link.close(reason="test over", grace=3.0)
        else:
            link.hang_up("hung up")
        gone = await link.wait_gone(WAIT)
        return fds, gone, len(lost)

    fds, gone, lost = run(body(polite=True))
    # stdout and stderr were one pipe: the agent moved the protocol off fd 1 and logs nowhere
    assert fds[0].startswith("pipe:") and fds[1:] == ["/dev/null", "/dev/null"], fds
    assert gone and lost == 1
    _, gone, lost = run(body(polite=False))      # never authenticated: EOF ends it
    assert gone and lost == 1


def test_a_start_cancelled_before_the_exec_leaves_no_process(home: str,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setattr(spareagent, "_raw_terminal", _slow_exec)
    forked = threading.Event()
    pids: list[int] = []
    signalling_init = agentlink._SignallingPty.__init__

    def noting_init(self: Any, pid: int, fd: int) -> None:
        signalling_init(self, pid, fd)
        pids.append(pid)
        forked.set()

    monkeypatch.setattr(agentlink._SignallingPty, "__init__", noting_init)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        starting = loop.create_task(connect_agent(
            "a1", [sys.executable, "-m", "pclient"], timeout=WAIT,
            on_message=lambda *_: None, on_lost=lambda *_: None))
        assert await loop.run_in_executor(None, forked.wait, WAIT)
        assert not starting.done()              # the child has not exec'd yet
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting

    run(body())
    assert len(pids) == 1
    with pytest.raises(ProcessLookupError):     # killed and reaped before the cancel ended
        os.kill(pids[0], 0)


# -- the diagnostics ----------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_turn_watch_times_turns_and_names_slow_callbacks() -> None:
    wall, cpu = FakeClock(), FakeClock()
    watch = TurnWatch(slow=0.002, clock=wall, cpu_clock=cpu)
    original_run = asyncio.events.Handle._run

    def slow_work() -> None:
        wall.now += 0.030                       # 30 ms, of which 10 on a CPU
        cpu.now += 0.010

    async def body() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        selector_select = loop._selector.select            # type: ignore[attr-defined]
        assert watch.install(loop)
        try:
            with pytest.raises(RuntimeError):
                TurnWatch().install(loop)                  # one at a time
            for _ in range(5):
                await asyncio.sleep(0)
            loop.call_soon(slow_work)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return watch.summary()
        finally:
            watch.uninstall()
            assert asyncio.events.Handle._run is original_run
            assert loop._selector.select == selector_select   # type: ignore[attr-defined]

    summary = run(body())
    assert summary["turns"] >= 6 and summary["slow_turn_count"] == 1
    assert summary["slow_cpu_turn_count"] == 1
    assert summary["busy_s"] == pytest.approx(0.030)
    assert summary["busy_cpu_s"] == pytest.approx(0.010)
    [(_, ms, cpu_ms, callbacks)] = summary["slow_turns"]
    assert (ms, cpu_ms) == pytest.approx((30.0, 10.0)) and callbacks >= 1
    [(_, ms, what)] = summary["slow_callbacks"]
    assert ms == pytest.approx(30.0) and what.endswith("slow_work")
    assert histogram_quantile(summary["histogram_ms"], 1.0) == 50.0
    assert histogram_quantile(summary["cpu_histogram_ms"], 1.0) == 10.0
    assert histogram_quantile({"1.0": 0}, 0.5) is None


def test_gc_watch_counts_full_collections_and_loop_watch_reports_them() -> None:
    watch = GcWatch()
    watch.install()
    try:
        gc.collect()
    finally:
        watch.uninstall()
    assert watch.full_collections == 1
    full, pause = watch.since(0.0)
    assert full == 1 and pause is not None and pause >= 0.0
    assert LoopWatch().summary()["gc_full"] == 0            # never started: nothing seen


def test_the_profiler_writes_one_file_per_phase(tmp_path: Path) -> None:
    from pcontrol.daemon import _Profiler
    prefix = tmp_path / "prof"
    profiler = _Profiler(str(prefix))
    sum(range(1000))
    profiler.dump()
    sum(range(1000))
    profiler.dump(final=True)
    import pstats
    assert pstats.Stats(str(prefix) + ".1").total_calls > 0
    assert pstats.Stats(str(prefix)).total_calls > 0
    assert profiler.dumps == 1


def test_status_carries_the_loops_figures_and_a_finished_job_is_counted() -> None:
    async def body() -> dict[str, Any]:
        controller = Controller(None, make_config())
        await controller.start()
        job = controller.submit(JobSpec(argv=["true"], pending=0.0))
        await turns_until(lambda: job.state is JobState.DONE, "the job timed out")
        status = controller.status()
        await controller.stop()
        return status

    status = run(body())
    loop = status["loop"]
    assert {"samples", "lag_p99_ms", "gc_full", "gc_max_ms", "gc_full_total"} <= set(loop)
    assert "turns" not in loop                  # the turn watch is off unless asked for
    assert status["jobs"]["DONE"] == 1


def test_the_daemons_gc_policy_runs_full_collections_on_its_timer_only() -> None:
    from pcontrol.loadwatch import GcPolicy
    before = gc.get_threshold()

    async def body() -> None:
        policy = GcPolicy(interval=3600.0)
        policy.start()
        try:
            assert gc.get_threshold() == (before[0], before[1], GcPolicy.NEVER)
            watch = GcWatch()
            watch.install()
            try:
                policy._collect()               # what its timer does
            finally:
                watch.uninstall()
            assert policy.collections == 1 and watch.full_collections == 1
            assert policy._handle is not None   # armed again
        finally:
            policy.stop()
        assert policy._handle is None

    run(body())
    assert gc.get_threshold() == before


def test_an_agent_can_start_at_a_lower_priority_with_its_autogroup(home: str) -> None:
    async def body() -> tuple[int, str]:
        link = await connect_agent("a1", [sys.executable, "-m", "pclient"], timeout=WAIT,
                                   on_message=lambda *_: None, on_lost=lambda *_: None,
                                   nice=7)
        try:
            stat = Path(f"/proc/{link.pid}/stat").read_text().rsplit(")", 1)[1].split()
            try:
                autogroup = Path(f"/proc/{link.pid}/autogroup").read_text()
            except OSError:             # a kernel without autogroups
                autogroup = ""
            return int(stat[16]), autogroup
        finally:
            await link.close(reason="test over", grace=3.0)

    niceness, autogroup = run(body())
    assert niceness == 7
    assert autogroup == "" or autogroup.split()[-1] == "7"
    with pytest.raises(ValueError, match="niceness must be 0 to 19"):
        run(connect_agent("a1", ["true"], timeout=WAIT, on_message=lambda *_: None,
                          on_lost=lambda *_: None, nice=-1))


def test_an_event_is_encoded_once_for_all_its_subscribers(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from pcontrol import server as server_module
    calls: list[Event] = []
    encode = server_module.encode

    def counting(message: Any) -> bytes:
        calls.append(message)
        return encode(message)

    monkeypatch.setattr(server_module, "encode", counting)
    server = server_module.ControlServer(Controller(None, make_config()), tmp_path / "s")
    first = Event(EventKind.JOB, {"id": 1}, 1)
    second = Event(EventKind.JOB, {"id": 1}, 2)
    lines = [server.encoded(event) for event in (first, first, first, second, second)]
    assert calls == [first, second]
    assert lines[0] is lines[2] and lines[3] != lines[0] and lines[3].endswith(b"\n")
