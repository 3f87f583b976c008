"""`sched --simulate`: the real scheduler and the real controller, on virtual time.

    sim = Simulation(interp, SimOptions(duration=86400, faults=faults, seed=1))
    sim.run(lambda: interp.eval_file("tasks.sched"))   # the script, then virtual time to the end
    sim.timeline                                        # what happened (psched.scheduler.simreport)

What is real: the Scheduler (task timing, trange windows, nmax/npending, priorities, exec and
exit macros), its ControllerLink (psched.scheduler.remote), the sync backend, pcontrol's verb
table and its Controller with its HostTable (dispatch, host slots and states, backoff,
pending timeouts, retries and requeue on host loss, sync runs). They run on a VirtualLoop
(psched.scheduler.virtualloop) installed as the process's one loop, so every timer, sleep and
timeout of theirs is on virtual time and the loop jumps to the next one when idle.

What is simulated, each behind a seam the real code already has: the hosts' agents
(pcontrol.simagent, through hosts.HostOpener), the socket between sched and pcontrol
(pcontrol.inprocess, an address for the link), `host LOCAL` jobs (SimLocalBackend, which
runs them on a simulated agent too), `exec` (SimExec, through the ExecRunner seam), the
files a task's output would be written to (nothing is written: `deliver`), and what the file
commands would change (`open` for writing keeps the file in memory; `file delete`, `mkdir`,
`rename`, `copy` are noted in the timeline: Channels.dry_run). No process is
started, no socket or file is opened for writing, $SCHED_HOME is not touched: the scheduler
has no home, pcontrol no journal, the link's harvest log lives in memory.

Randomness (drawn job times, the backoff jitter of host retries, probe rounds' random
times) comes from `--seed`. Probe rounds (issue 16) plug in through RoundSource.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, Callable, Protocol

from pclient import protocol as agent_protocol
from pcontrol.config import ControllerConfig
from pcontrol.errors import ClientError
from pcontrol.controller import Controller
from pcontrol.inprocess import InProcessAddress
from pcontrol.outcome import from_agent
from pcontrol.simagent import SimLink, SimOpener

from ..lang.clock import Clock
from ..lang.commands.exec import EXEC_RUNNER_KEY
from ..lang.errors import QuitRequest, ScriptError
from .attach import SCHEDULER_KEY, attach_shell
from .eventloop import get_loop, install_loop, leave_soon, run_until
from .jobs import Job, JobSink, WithoutController
from .loop import Scheduler
from .remote import ControllerLink, HarvestLog
from .simfaults import Faults, FaultModel, HostFault
from .simreport import Timeline
from .syncdefs import sync_defs
from .syncjobs import SyncBackend
from .taskspec import OutputDest
from .virtualloop import VirtualLoop

log = logging.getLogger(__name__)

__all__ = ["ROUND_SOURCE_KEY", "RoundSource", "SimClock", "SimOptions", "Simulation", "SimulationOver", "SIM_HOME"]

SIM_HOME = Path("/nonexistent/sched-simulation")
"""The home the simulated controller link names (for its owner id): never created, never read."""

SIM_HEARTBEAT = 300.0
"""Seconds between the simulated controller's pings: a simulated agent never goes silent, so
pings decide nothing there, and a ping a second for a week would be most of the work."""


class SimulationOver(QuitRequest):
    """The simulated duration has passed: raised out of the wait under way (a script's `wait`)."""


ROUND_SOURCE_KEY = "simulation.rounds"
"""Key in `interp.extensions` of the simulation's RoundSource (absent outside a simulation)."""


class RoundSource(Protocol):
    """The seam for probe rounds (issue 16): what a simulation hands their scheduling, so that
    their random times come from --seed and their waits from the virtual clock (the Simulation
    is one; found under ROUND_SOURCE_KEY in `interp.extensions`). Rounds themselves are not
    simulated here: their code plugs in by drawing from `rng()` and reading `now()`."""

    def rng(self) -> random.Random: ...

    def now(self) -> float:
        """Virtual wall-clock seconds."""


class SimClock(Clock):
    """The scheduler's clock in a simulation: the virtual loop's time, plus the start's wall time."""

    on_loop = True

    def __init__(self, loop: VirtualLoop, start_wall: float, tz: tzinfo):
        self._loop = loop
        self._start = start_wall
        self._tz = tz

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def monotonic(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        return self._start + self._loop.time()


@dataclass
class SimOptions:
    duration: float
    start_wall: float
    tz: tzinfo
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    job_time: float = 1.0


class SimControllerLink(ControllerLink):
    """sched's real controller link, on the simulated controller: no home of its own (no run
    ledger, its harvest log in memory), and no daemon to start, stop or switch to."""

    def __init__(self, sched: JobSink, address: InProcessAddress):
        super().__init__(sched, home=SIM_HOME, auto_start=False, address=address)  # type: ignore[arg-type]
        self.harvests = HarvestLog(None)  # in memory only: a simulation writes no file

    @property
    def home(self) -> None:  # type: ignore[override]
        return None  # the scheduler keeps no run ledger for the next sched

    def start_daemon(self) -> Any:
        from pcontrol.daemon import DaemonResult  # loaded with the controller already

        return DaemonResult(True, "pcontrol already running (the simulated controller)")

    def stop_daemon(self, kill: bool = False, force: bool = False, on_purpose: bool = False) -> Any:
        from pcontrol.daemon import DaemonResult  # loaded with the controller already

        return DaemonResult(False, "the simulated controller is not stopped by a simulation")

    async def retarget(self, address: Any) -> None:
        raise ClientError("a simulation has one controller, the simulated one")


class SimLocalBackend(WithoutController):
    """`host LOCAL` jobs in a simulation: run on a simulated agent of their own (the same
    SimLink the controller's hosts have), reported to the scheduler as LocalBackend does."""

    def __init__(self, sched: JobSink, opener: SimOpener):
        self.sched = sched
        self._opener = opener
        self._link: SimLink | None = None
        self._jobs: dict[str, Job] = {}

    def _agent(self) -> SimLink:
        if self._link is None:
            self._link = SimLink("LOCAL", 1 << 30, self._opener.model, 0.0, self._message,
                                 lambda link, reason: None, 1, "", self._opener.wall)
        return self._link

    def submit(self, job: Job) -> None:
        self._jobs[str(job.id)] = job
        self._agent().send(agent_protocol.Run(job=str(job.id), argv=tuple(job.argv), timeout=job.timeout))

    def _message(self, link: SimLink, message: agent_protocol.Message) -> None:
        if isinstance(message, agent_protocol.Started):
            job = self._jobs.get(message.job)
            if job is not None:
                self.sched.job_started(job, ran_on="LOCAL", pid=message.pid)
        elif isinstance(message, agent_protocol.Ended):
            job = self._jobs.pop(message.job, None)
            if job is not None:
                self.sched.job_ended(job, from_agent(message.outcome), status=message.status,
                                     signal=message.signal, stdout=message.stdout, elapsed=message.elapsed,
                                     reason=message.reason or "", ran_on="LOCAL")

    def kill(self, job: Job) -> bool:
        if str(job.id) not in self._jobs:
            return False
        self._agent().send(agent_protocol.Kill(job=str(job.id)))
        return True

    def jobs_out(self) -> int:
        return len(self._jobs)


class SimExec:
    """`exec` in a simulation (an ExecRunner): recorded; returns "" or what the faults say."""

    def __init__(self, faults: Faults, timeline: Timeline):
        self.faults = faults
        self.timeline = timeline

    def run(self, words: list[str]) -> str:
        command = " ".join(words)
        rule = self.faults.exec_rule(command)
        result = "" if rule is None else rule.result
        if rule is not None and rule.fails:
            self.timeline.note("exec", detail=f"{command} -> error: {result}")
            raise ScriptError(result)
        self.timeline.note("exec", detail=f"{command} -> {result!r}")
        return result


class Simulation:
    """One simulated run: the world the script runs in, and the timeline it leaves."""

    def __init__(self, interp: Any, options: SimOptions):
        self.options = options
        self.interp = interp
        self.loop = VirtualLoop()
        install_loop(self.loop)
        self.clock = SimClock(self.loop, options.start_wall, options.tz)
        self.random = random.Random(options.seed)
        random.seed(options.seed)  # pcontrol's backoff jitter draws from the module's generator
        self.timeline = Timeline(self.clock, options.duration)
        model = FaultModel(options.faults, options.job_time, self.random, self.loop.time)
        self.opener = SimOpener(model, self.clock.wall)
        config = ControllerConfig(heartbeat=SIM_HEARTBEAT)
        self.controller = Controller(None, config, clock=self.clock.wall, opener=self.opener)
        self.address = InProcessAddress(self.controller, SIM_HOME)
        self.sched = self._scheduler()
        self.controller.subscribe(self.timeline)
        interp.extensions[EXEC_RUNNER_KEY] = SimExec(options.faults, self.timeline)
        interp.channels.dry_run = lambda what: self.timeline.note("file", detail=what)  # (no file is written)
        interp.extensions[ROUND_SOURCE_KEY] = self

    # -- RoundSource -------------------------------------------------------------------------

    def rng(self) -> random.Random:
        return self.random

    def now(self) -> float:
        return self.clock.wall()

    def _scheduler(self) -> Scheduler:
        interp = self.interp
        sched = Scheduler(interp, clock=self.clock)
        interp.clock = self.clock
        sched.local = SimLocalBackend(sched, self.opener)
        link = SimControllerLink(sched, self.address)
        sched.remote = link
        sched.syncs = SyncBackend(sched, lambda: sync_defs(interp), lambda: link)
        sched.job_listeners = [self.timeline.job_changed]  # no joblog file: recorded instead
        sched.deliver = self._deliver
        interp.extensions[SCHEDULER_KEY] = sched
        attach_shell(interp, sched)
        sched.on_message = self.timeline.message
        return sched

    def _deliver(self, interp: Any, dest: OutputDest, text: str) -> None:
        if dest.var is not None:
            interp.set_var("::" + dest.var, text)  # the script's own state: for real
        else:
            self.timeline.note("output", detail=f"would {'append' if dest.append else 'write'} "
                                                f"{len(text.encode())} bytes to {dest.path}")

    # -- running ---------------------------------------------------------------------------

    def run(self, script: Callable[[], Any], wait_to_end: bool = True) -> int:
        """Run the script, then (`wait_to_end`) virtual time up to the end; the script's exit status."""
        run_until(self.controller.start(watch_loop=False), "simulate", interruptible=False)
        link = self.sched.remote
        assert isinstance(link, SimControllerLink)
        run_until(link.connect(), "simulate", interruptible=False)  # `controller status` asks no socket
        for fault in self.options.faults.events:
            self.loop.call_at(fault.at, self._apply, fault)
        self.loop.call_at(self.options.duration, self._over)
        status = 0
        try:
            script()
            if wait_to_end and not self.timeline.over:
                run_until(asyncio.Event().wait(), "simulate", interruptible=False)
        except SimulationOver:
            pass
        except QuitRequest as request:
            status = request.status
        self.timeline.finish(self.sched)
        return status

    def _over(self) -> None:
        self.timeline.over = True
        self.timeline.at_end(self.sched)
        self.sched.stop()
        leave_soon(SimulationOver(0))

    def _apply(self, fault: HostFault) -> None:
        where = f"(faults line {fault.line})"
        if fault.kind == "down":
            span = "" if fault.duration is None else f" for {fault.duration:g} s"
            killed = fault.duration == 0
            reason = "simulated: its agent was killed" if killed else "simulated: the host went down"
            self.timeline.note("fault", host=fault.target, detail=f"agent killed {where}" if killed
                               else f"host down{span} {where}")
            until = self.options.duration * 2 + 1 if fault.duration is None else fault.duration
            self.opener.kill(fault.target, reason, down_for=until)
        elif fault.kind == "clock":
            self.timeline.note("fault", host=fault.target, detail=f"clock offset {fault.offset:+g} s {where}")
            self.opener.set_offset(fault.target, fault.offset)
        elif fault.kind == "unreachable":
            self.timeline.note("fault", detail=f"controller unreachable for {fault.duration:g} s {where}")
            self.address.cut("simulated: the controller is unreachable")
            get_loop().call_later(fault.duration or 0.0, self._reachable)

    def _reachable(self) -> None:
        self.timeline.note("fault", detail="controller reachable again")
        self.address.restore()

    # -- the guard test's view -------------------------------------------------------------

    def components(self) -> dict[str, Any]:
        """The objects doing the work (tests assert these are the production classes)."""
        return {"scheduler": self.sched, "link": self.sched.remote, "controller": self.controller,
                "host_table": self.controller.host_table, "loop": self.loop}

