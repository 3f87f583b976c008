"""The guard of issue 15: a simulation runs the production scheduling and dispatch code, never
a copy of its rules.

- The objects a Simulation builds are of the production classes (the Scheduler, sched's
  ControllerLink, pcontrol's Controller and HostTable with their dispatch indexes), and
  after a simulated run they hold the state that code made (jobs, dispatch, hosts).
- The simulation's own modules define no scheduling or dispatch rule: none subclasses the
  scheduler, the controller, the host table or the dispatch structures, and none defines a
  function by the names of the rules (plan, allowed, pick, best_for, ...; `submit` is the
  Backend seam a simulated backend must have) or imports the
  timing maths or the dispatch module itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

from psched.lang.interp import Interp
from psched.scheduler import loop, timing
from psched.scheduler.eventloop import close_loop
from psched.scheduler.remote import ControllerLink
from psched.scheduler.simfaults import Faults
from psched.scheduler.simulation import SimOptions, Simulation
from psched.scheduler.virtualloop import VirtualLoop

from pcontrol import controller, dispatch, hosts, reports

ROOT = Path(__file__).resolve().parents[2]
SIM_MODULES = [ROOT / "sched/scheduler/simulation.py", ROOT / "sched/scheduler/simfaults.py",
               ROOT / "sched/scheduler/simreport.py", ROOT / "sched/scheduler/virtualloop.py",
               ROOT / "sched/shell/simulate.py", ROOT / "pcontrol/simagent.py", ROOT / "pcontrol/inprocess.py"]
RULE_NAMES = {"plan", "allowed", "allowed_at", "next_change", "pick", "best_for", "pop_best_for", "_fill",
              "_place", "_start", "_finish", "_job_lost", "_requeue", "look", "step", "_schedule", "_next_poll",
              "job_ended", "_enqueue", "_update_load", "down", "_count_failure"}
PRODUCTION = {"Scheduler", "Controller", "HostTable", "DispatchIndex", "FreeHosts", "TimerHeap", "LazyHeap",
              "AgentReports", "TaskTiming", "SyncRuns"}


def test_a_simulation_is_made_of_the_production_classes() -> None:
    close_loop()  # a simulation installs its own loop as the process's: none may be made yet
    interp = Interp()
    sim = Simulation(interp, SimOptions(duration=600, start_wall=1_740_996_000.0, tz=timing.timezone.utc,
                                        faults=Faults(), seed=1))
    try:
        parts = sim.components()
        assert type(parts["scheduler"]) is loop.Scheduler
        assert isinstance(parts["link"], ControllerLink)
        assert type(parts["controller"]) is controller.Controller
        assert type(parts["host_table"]) is hosts.HostTable
        assert isinstance(parts["loop"], VirtualLoop)
        ctl = parts["controller"]
        assert type(ctl._index) is dispatch.DispatchIndex and type(ctl._free) is dispatch.FreeHosts
        assert isinstance(ctl, reports.AgentReports)
        # the link subclass changes only where its files and daemon are, not how it sends jobs
        overridden = {name for name, value in vars(type(parts["link"])).items() if callable(value) or
                      isinstance(value, property)} - {"__init__"}
        assert overridden <= {"home", "start_daemon", "stop_daemon", "retarget"}, overridden

        def script() -> None:
            interp.eval("controller host add h1 -slots 1\ncontroller host add h2 -slots 1\n"
                        "task t\n  command work\n  nmax 3\n  retry 1\nend\nrun\n")

        sim.run(script)
        entry = sim.sched.tasks["t"]
        assert type(entry.timing) is timing.TaskTiming and entry.timing.made == 3
        assert {job.ran_on for job in sim.sched.jobs.values()} == {"h1", "h2"}  # the dispatch's round robin
        assert sorted(ctl.hosts) == ["h1", "h2"] and all(type(h.running) is set for h in ctl.hosts.values())
    finally:
        close_loop()


def test_the_simulation_modules_carry_no_rule_of_their_own() -> None:
    for path in SIM_MODULES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not bases & PRODUCTION, f"{path.name}: {node.name} subclasses {bases & PRODUCTION}"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.name not in RULE_NAMES, f"{path.name}: defines {node.name}, a scheduling or dispatch rule"
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.endswith(("timing", "dispatch")), f"{path.name} imports {node.module}"
