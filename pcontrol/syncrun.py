"""Synchronized runs: every target's process started at one instant, on many hosts.

    result = await syncs.run(spec)      # `sync run`: the phases below, then the result dict
    syncs.kill(name)                    # `sync kill`: end the runs of that name now
    syncs.message(host, message)        # the HostListener hands over the agents' reports
    syncs.host_changed(host) / host_lost(host, reason)

A run goes through four phases, each bounded:

  check     every target's host must be up (a host still connecting is waited for, up to
            connect_timeout); its agent answers clock probes over the existing link, which
            measure its clock offset (clockprobe.py). A host that is down or silent makes its
            targets DOWN.
  prepare   each target's command is sent in a `prepare`: the agent forks it held at a gate
            (pclient.syncstart) and says `ready`. A target that cannot be made ready ends
            with what its agent reports (EXIT 127 for a missing program) or DOWN.
  go        the instant T is picked far enough ahead for every agent to hear of it (four of
            the slowest round trips, at least MIN_LEAD), and each host gets one `go` naming
            its jobs, T and its own offset (its correction: 0 when the measured offset is
            within its own error, pclient.clockmath): each gate starts its program at T by
            its own clock. The baseline mode (`sequential`) instead tells each target "now", one
            after another, as NetJobs did. Each target reports its real start (`launched`).
  wait      until every target has ended. A target past its timeout (counted from T) is
            killed and ends TIMEOUT. Quorum (`-minhosts`): with `all`, the first target that
            does not exit 0 fails the run; with N, the run fails as soon as fewer than N
            targets can still succeed (0 never fails). Once the run has failed, the targets
            still running are killed (KILLED).

A run's targets are named in the agent protocol `sync<RUN>.<INDEX>`, which no ordinary job
word can be, so reports are routed here by their word. Sync runs are not journaled: they
live as long as the request that asked for them (a restart of pcontrol ends them, and the
agents kill their sync jobs when their controller goes).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pclient import protocol as agent_protocol
from pclient.clockmath import ClockSample

from .clockprobe import ClockProbes
from .errors import UsageError
from .model import Host, HostState
from .outcome import Outcome, from_agent

if TYPE_CHECKING:  # a sync run's words and results: loaded by its first run (start-up, issue 13)
    from .syncspec import SyncSpec, SyncTarget

log = logging.getLogger(__name__)

__all__ = ["SYNC_REPORTS", "SyncRuns", "WORD_PREFIX"]

WORD_PREFIX = "sync"
MIN_LEAD = 0.15
"""Seconds: the least time between picking the instant and the instant itself."""
LEAD_RTTS = 4
PREPARE_TIMEOUT = 30.0
"""Seconds for every target to be forked and waiting at its gate."""
KILL_WAIT = 15.0
"""Seconds to wait for a killed target's report before it is called DOWN."""

_UP = (HostState.IDLE, HostState.BUSY)

Send = Callable[[Host, agent_protocol.Message], bool]

SYNC_REPORTS = (agent_protocol.Ready, agent_protocol.Launched, agent_protocol.Ended,
                agent_protocol.Error)
"""The agent's messages that may be about a sync job (routed here when their word is one)."""


@dataclass
class _Target:
    index: int
    spec: SyncTarget
    word: str
    timeout: float | None
    host: Host | None = None
    ready: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    ended: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    forked_clock: float | None = None   # agent's clock when it was forked
    launched: float | None = None       # agent's clock of the real start
    late: float | None = None
    offset: float = 0.0
    outcome: Outcome | None = None      # EXIT CRASH TIMEOUT DOWN KILLED (set once)
    status: int | None = None
    signal: int | None = None
    reason: str = ""
    stdout: str = ""
    stderr: str = ""
    elapsed: float | None = None        # seconds from fork to end (agent's count)
    timed_out: bool = False
    killed_for: str = ""
    sent: bool = False                  # prepare was sent

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.EXIT and self.status == 0

    def finish(self, outcome: Outcome, reason: str = "", *, status: int | None = None,
               sig: int | None = None) -> None:
        if self.done:
            return
        self.outcome, self.reason, self.status, self.signal = outcome, reason, status, sig
        for future in (self.ready, self.ended):
            if not future.done():
                future.set_result(None)


class _Run:
    def __init__(self, number: int, spec: SyncSpec, clock: Callable[[], float]):
        self.number = number
        self.spec = spec
        self.clock = clock
        self.targets = [_Target(i, t, f"{WORD_PREFIX}{number}.{i}", spec.target_timeout(t))
                        for i, t in enumerate(spec.targets, 1)]
        self.by_word = {t.word: t for t in self.targets}
        self.instant: float | None = None
        self.lead: float | None = None
        self.failed_reason = ""
        self.delays: list[float] = []
        """Round trips of the hosts' best clock probes (seconds)."""
        self.changed = asyncio.Event()

    def quorum_lost(self) -> str:
        """Why the run can no longer succeed ('' while it can)."""
        spec = self.spec
        if spec.minhosts is None:
            bad = next((t for t in self.targets if t.done and not t.succeeded), None)
            if bad is not None:
                return f"target {bad.index} on {bad.spec.host} ended {self.outcome_of(bad)}"
            return ""
        possible = sum(1 for t in self.targets if not t.done or t.succeeded)
        if possible < spec.minhosts:
            return f"only {possible} target(s) can still succeed; -minhosts is {spec.minhosts}"
        return ""

    @staticmethod
    def outcome_of(target: _Target) -> str:
        from .syncspec import outcome_text  # with the first sync run (start-up, issue 13)

        return outcome_text(target.outcome, target.status, target.signal)


#: Finished runs `sync runs` remembers (their results without the targets' output).
RECENT_RUNS = 20


class SyncRuns:
    """The runs under way, and how a run goes (module docstring)."""

    def __init__(self, hosts: Callable[[], dict[str, Host]], add_host: Callable[[str], Host],
                 send: Send, probes: ClockProbes, *, connect_timeout: float,
                 clock: Callable[[], float] = time.time):
        self._hosts = hosts
        self._add_host = add_host
        self._send = send
        self._probes = probes
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._numbers = itertools.count(1)
        self._runs: dict[int, _Run] = {}
        self._host_events: dict[str, asyncio.Event] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_RUNS)
        """The last runs' results, oldest first, without output (not journaled)."""

    # -- routing -------------------------------------------------------------------------

    def owns(self, message: agent_protocol.Message) -> bool:
        """Whether the message reports on a sync job (by its job word)."""
        return (isinstance(message, SYNC_REPORTS) and message.job is not None
                and message.job.startswith(WORD_PREFIX))

    def _target(self, word: str) -> tuple[_Run, _Target] | None:
        try:
            number = int(word[len(WORD_PREFIX):].split(".", 1)[0])
        except ValueError:
            return None
        run = self._runs.get(number)
        target = run.by_word.get(word) if run is not None else None
        return (run, target) if target is not None and run is not None else None

    def message(self, host: Host, message: agent_protocol.Message) -> None:
        """An agent's report about a sync job (the caller checked `owns` of its word)."""
        assert isinstance(message, SYNC_REPORTS) and message.job is not None
        found = self._target(message.job)
        if found is None:
            log.debug("%s: a report for a sync job no run waits for: %s", host.name, message)
            return
        run, target = found
        if isinstance(message, agent_protocol.Ready):
            target.forked_clock = message.clock
            if not target.ready.done():
                target.ready.set_result(None)
        elif isinstance(message, agent_protocol.Launched):
            target.launched, target.late = message.clock, message.late
        elif isinstance(message, agent_protocol.Ended):
            self._ended(target, message)
        elif isinstance(message, agent_protocol.Error):
            target.finish(Outcome.DOWN, f"the agent refused: {message.reason}")
        run.changed.set()

    def _ended(self, target: _Target, message: agent_protocol.Ended) -> None:
        target.stdout, target.stderr, target.elapsed = message.stdout, message.stderr, message.elapsed
        outcome = from_agent(message.outcome)
        if target.timed_out:
            target.finish(Outcome.TIMEOUT, f"still running {target.timeout:g} s after the instant; killed",
                          sig=message.signal)
        elif target.killed_for and outcome in (Outcome.KILLED, Outcome.CRASH):
            target.finish(Outcome.KILLED, target.killed_for, sig=message.signal)
        elif outcome is Outcome.EXIT:
            reason = message.reason or ""
            if message.status in (126, 127) and target.launched is None:
                reason = message.stderr.strip() or reason
            target.finish(Outcome.EXIT, reason, status=message.status)
        else:
            target.finish(outcome, message.reason or "", sig=message.signal)

    def host_changed(self, host: Host) -> None:
        event = self._host_events.get(host.name)
        if event is not None:
            event.set()

    def host_lost(self, host: Host, reason: str) -> None:
        for run in self._runs.values():
            for target in run.targets:
                if target.host is host and not target.done:
                    target.finish(Outcome.DOWN, f"host {host.name} was lost: {reason}")
            run.changed.set()

    def kill(self, name: str) -> int:
        """`sync kill NAME`: end the runs of that name now (their targets end KILLED); how
        many runs there were."""
        runs = [run for run in self._runs.values() if run.spec.name == name]
        for run in runs:
            if not run.failed_reason:
                run.failed_reason = "killed on request"
            for target in run.targets:
                if target.done:
                    continue
                if target.sent:
                    self._kill(target, "killed on request")
                    self._spawn_watch(target)
                else:
                    target.finish(Outcome.KILLED, "killed on request")
            run.changed.set()
        return len(runs)

    # -- a run ---------------------------------------------------------------------------

    def resolve_hosts(self, spec: SyncSpec) -> list[str]:
        """Check the targets' hosts exist (or add them, for a spec that says so); the hosts
        added. Raises UsageError naming an unknown host otherwise."""
        hosts = self._hosts()
        added = []
        for target in spec.targets:
            if target.host in hosts or target.host in added:
                continue
            if not spec.add_hosts:
                line = f" (line {target.line})" if target.line else ""
                known = ", ".join(sorted(hosts)[:10]) or "none"
                raise UsageError(f"sync {spec.name}: target host {target.host}{line} is not a "
                                 f"pcontrol host (known: {known}); add it with `host add "
                                 f"{target.host}` first")
            self._add_host(target.host)
            added.append(target.host)
        return added

    async def run(self, spec: SyncSpec) -> dict[str, Any]:
        added = self.resolve_hosts(spec)
        number = next(self._numbers)
        run = _Run(number, spec, self._clock)
        self._runs[number] = run
        try:
            await self._go_through(run)
        finally:
            del self._runs[number]
        result = self._result(run)
        result["added_hosts"] = added
        self.recent.append(dict(result, ended=self._clock(), targets=[
            {k: v for k, v in t.items() if k not in ("stdout", "stderr")} for t in result["targets"]]))
        return result

    async def _go_through(self, run: _Run) -> None:
        await self._check(run)
        if not await self._failed(run):
            await self._prepare(run)
        if not await self._failed(run):
            self._start(run)
            await self._wait(run)

    async def _failed(self, run: _Run) -> bool:
        """The run can no longer succeed (or was killed): kill what was prepared, note why."""
        reason = run.failed_reason or run.quorum_lost()
        if not reason:
            return False
        run.failed_reason = reason
        await self._kill_rest(run, f"the run failed: {reason}")
        return True

    # check ---------------------------------------------------------------------------

    async def _check(self, run: _Run) -> None:
        names = sorted({t.spec.host for t in run.targets})
        offsets = await asyncio.gather(*(self._check_host(name) for name in names))
        by_name = dict(zip(names, offsets))
        for target in run.targets:
            host = self._hosts().get(target.spec.host)
            target.host = host
            checked = by_name[target.spec.host]
            if isinstance(checked, str):
                target.finish(Outcome.DOWN, checked)
            else:
                target.offset = checked.correction
        run.delays = [c.delay for c in by_name.values() if isinstance(c, ClockSample)]

    async def _check_host(self, name: str) -> ClockSample | str:
        """The host's clock offset, or why its targets cannot run (the reason, as text)."""
        host = self._hosts().get(name)
        if host is None:
            return f"host {name} is not defined"
        if host.state is HostState.CONNECTING:      # just added, or retrying: wait for it
            await self._wait_connected(host)
        if host.state not in _UP:
            why = f": {host.reason}" if host.reason else ""
            return f"host {name} is {host.state.value}{why}"
        if host.pull:
            return f"host {name} is a pull probe: pcontrol cannot start it at an instant"
        measured = await self._probes.measure(host)
        if measured is None:
            return f"host {name}: its agent did not answer the clock probe (an agent too old for sync runs?)"
        if host.agent.get("skewed"):  # set by skew.SkewWatch as the measurement came in
            return f"host {name} is SKEWED: {host.agent['skewed']}"
        return measured

    async def _wait_connected(self, host: Host) -> None:
        event = self._host_events.setdefault(host.name, asyncio.Event())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        try:
            while host.state is HostState.CONNECTING and loop.time() < deadline:
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), deadline - loop.time())
                except asyncio.TimeoutError:
                    break
        finally:
            self._host_events.pop(host.name, None)

    # prepare --------------------------------------------------------------------------

    async def _prepare(self, run: _Run) -> None:
        for target in run.targets:
            if target.done or target.host is None:
                continue
            sent = self._send(target.host, agent_protocol.Prepare(job=target.word, argv=target.spec.argv))
            target.sent = sent
            if not sent:
                target.finish(Outcome.DOWN, f"host {target.host.name}: the link to its agent is closed")
        waiting = [t.ready for t in run.targets if not t.done]
        deadline = asyncio.get_running_loop().time() + PREPARE_TIMEOUT
        while waiting and not run.quorum_lost():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            run.changed.clear()
            changed = asyncio.ensure_future(run.changed.wait())
            await asyncio.wait([*waiting, changed], timeout=left, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            waiting = [f for f in waiting if not f.done()]
        if run.quorum_lost():
            return              # the caller kills them all
        for target in run.targets:
            if not target.done and not target.ready.done():
                self._kill(target, "")
                target.finish(Outcome.DOWN, f"not ready at its gate within {PREPARE_TIMEOUT:g} s")

    # go -------------------------------------------------------------------------------

    def _start(self, run: _Run) -> None:
        ready = [t for t in run.targets if not t.done]
        if run.spec.sequential:
            run.instant = self._clock()
            run.lead = 0.0
            for target in ready:          # one after another, as NetJobs did
                assert target.host is not None
                self._send(target.host, agent_protocol.Go(jobs=(target.word,), at=0.0, offset=0.0))
            return
        delays = run.delays or [0.0]
        run.lead = run.spec.lead if run.spec.lead is not None else max(MIN_LEAD, LEAD_RTTS * max(delays) + 0.05)
        run.instant = self._clock() + run.lead
        by_host: dict[str, list[_Target]] = {}
        for target in ready:
            by_host.setdefault(target.spec.host, []).append(target)
        for targets in by_host.values():
            host = targets[0].host
            assert host is not None
            self._send(host, agent_protocol.Go(jobs=tuple(t.word for t in targets), at=run.instant,
                                               offset=targets[0].offset))
        log.info("sync %s: %d target(s) start at %.6f (in %.0f ms)", run.spec.name, len(ready),
                 run.instant, run.lead * 1e3)

    # wait -----------------------------------------------------------------------------

    async def _wait(self, run: _Run) -> None:
        loop = asyncio.get_running_loop()
        assert run.instant is not None
        instant_loop = loop.time() + (run.instant - self._clock())
        while True:
            pending = [t for t in run.targets if not t.done]
            reason = run.quorum_lost()
            if reason and not run.failed_reason:
                run.failed_reason = reason
                await self._kill_rest(run, f"the run failed: {reason}")
                return
            if not pending:
                return
            now = loop.time()
            deadlines = []
            for target in pending:
                if target.timeout is None or target.timed_out:
                    continue
                due = instant_loop + target.timeout
                if now >= due:
                    target.timed_out = True
                    self._kill(target, "")
                    self._spawn_watch(target)
                else:
                    deadlines.append(due)
            run.changed.clear()
            wake = min(deadlines) - now if deadlines else None
            changed = asyncio.ensure_future(run.changed.wait())
            try:
                await asyncio.wait([changed, *(t.ended for t in pending)], timeout=wake,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()

    def _kill(self, target: _Target, reason: str) -> None:
        if reason:
            target.killed_for = reason
        if target.host is not None and target.sent:
            self._send(target.host, agent_protocol.Kill(job=target.word))

    def _spawn_watch(self, target: _Target) -> None:
        """A killed target whose report never comes is called DOWN after KILL_WAIT."""
        def give_up() -> None:
            if not target.done:
                target.finish(Outcome.TIMEOUT if target.timed_out else Outcome.DOWN,
                              f"no report from its agent {KILL_WAIT:g} s after it was killed")
        asyncio.get_running_loop().call_later(KILL_WAIT, give_up)

    async def _kill_rest(self, run: _Run, reason: str) -> None:
        rest = [t for t in run.targets if not t.done]
        for target in rest:
            if target.sent:
                self._kill(target, reason)
                self._spawn_watch(target)
            else:
                target.finish(Outcome.KILLED, reason)
        if rest:
            await asyncio.wait([t.ended for t in rest])

    # result ---------------------------------------------------------------------------

    def _result(self, run: _Run) -> dict[str, Any]:
        from .syncspec import percentile  # with the first sync run (start-up, issue 13)

        spec = run.spec
        instant = run.instant
        targets = []
        starts = []
        for t in run.targets:
            start_ms = run_time = None
            if t.launched is not None and instant is not None:
                start_ms = (t.launched - t.offset - instant) * 1e3
                starts.append(start_ms)
            if t.launched is not None and t.elapsed is not None and t.forked_clock is not None:
                # the agent counts from the fork; the target's run, from its launch
                run_time = max(0.0, t.forked_clock + t.elapsed - t.launched)
            targets.append({"index": t.index, "host": t.spec.host, "command": list(t.spec.argv),
                            "start_ms": None if start_ms is None else round(start_ms, 3),
                            "run_time": None if run_time is None else round(run_time, 3),
                            "outcome": run.outcome_of(t), "status": t.status, "signal": t.signal,
                            "reason": t.reason, "late_ms": None if t.late is None else round(t.late * 1e3, 3),
                            "offset_ms": round(t.offset * 1e3, 3), "stdout": t.stdout, "stderr": t.stderr})
        succeeded = sum(1 for t in run.targets if t.succeeded)
        success = succeeded >= spec.required and not run.failed_reason
        first = min(starts) if starts else None
        spread = [s - first for s in starts] if first is not None else []
        reason = run.failed_reason
        if not success and not reason:
            reason = f"{succeeded} of {len(run.targets)} succeeded, {spec.required} needed"
        return {"name": spec.name, "verdict": "success" if success else "failure",
                "reason": "" if success else reason, "instant": instant,
                "lead_ms": None if run.lead is None else round(run.lead * 1e3, 3),
                "succeeded": succeeded, "required": spec.required, "total": len(run.targets),
                "minhosts": "all" if spec.minhosts is None else spec.minhosts,
                "sequential": spec.sequential,
                "skew_ms": {"max": round(max(spread), 3) if spread else None,
                            "p95": round(percentile(spread, 0.95), 3) if spread else None},
                "targets": targets}

