"""Soak: jobs run for a fixed time through sched + pcontrol + local pclients while a random
component is killed with SIGKILL every few seconds; then the count of what was lost or
doubled.

    .venv/bin/python bench/bench_soak.py [--seconds 60] [--kill-every 4] [--seed N]

One throwaway $SCHED_HOME under /tmp: pcontrol with two local hosts (h1, h2; 4 slots each)
and `sched soak.sched` as a subprocess, whose one task makes short jobs (some exit 3, some
run a second or two; `retry 2`, 16 out at a time) and appends a line to an exit log from
its exit macro. Every --kill-every seconds (jittered) one of these is SIGKILLed and what is
needed is restarted:

    pcontrol   kill -9, then `pcontrol start` (sched reconnects by itself)
    a pclient  kill -9 of one live agent (pcontrol notices, restarts it, retries its jobs)
    sched      kill -9, then `sched soak.sched` again on the same $SCHED_HOME

After --seconds the task stops making jobs (a stop file), the last sched drains what is out
and leaves, and the bench prints: jobs submitted (the controller's records), jobs with
exactly one outcome (one exit-macro line, the outcome the controller recorded), lost (no
line: target 0) and duplicated (more than one first run: target 0), with the detail of the
count, and the reruns: a macro that a killed sched was in the middle of runs again in full
under the next, with `$job_rerun` 1 (docs/tasks.md), so at most one per sched kill. Exit
status 0 when nothing was lost or doubled and the reruns are within that, 1 otherwise.

Bounded: the task makes at most --max-jobs jobs; killing stops after --seconds; the drain
is given --drain seconds; every process started is ended on the way out.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "faults"))     # fault_harness
sys.path.insert(0, str(ROOT / "tests" / "tools"))      # what fault_harness imports (procs, waiting, sched_shell)

from fault_harness import FAST_SERVE, SCHED, FaultHome, alive, count, read_exit_log  # noqa: E402

COMPONENTS = ("pcontrol", "pclient", "sched")
KINDS = ["sleep 0.05", "sleep 0.2; exit 3", "echo out", "sleep 0.1", "sleep 1.5", "true",
         "sleep 0.3", "sleep 2.5"]


def soak_script(home: FaultHome, max_jobs: int) -> str:
    stop = home.path / "STOP"
    exit_log = home.path / "exits"
    kinds = " ".join("{" + k + "}" for k in KINDS)
    return f"""
task soak
  nmax {max_jobs}
  npending 16
  retry 2
  task.exec
    if {{[catch {{exec test -e {stop}}}] == 0}} {{skip}}
    set kinds [list {kinds}]
    command sh -c [lindex $kinds [expr {{$job_count % [llength $kinds]}}]] "t[clock microseconds]x$job_count"
  end
  task.exit default
    exec sh -c {{echo "$1 $2 s=$3 h=$4 m=default r=$6" >> "$5"}} exitlog [lindex $job_command end] $job_state $exit_status $job_host {{{exit_log}}} $job_rerun
  end
end
run
while {{[catch {{exec test -e {stop}}}]}} {{catch {{wait -timeout 0.5 soak}}}}
delete soak
# what is still out goes to sched.log every 10 s, for a drain that does not end
while {{[catch {{wait -timeout 10}} err]}} {{
  echo "still out: $err"
  echo [jobs -state RUNNING]
  echo [jobs -state PENDING]
}}
"""


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.home = FaultHome.make("soak")
        self.script = self.home.path / "soak.sched"
        self.script.write_text(soak_script(self.home, args.max_jobs))
        self.serve = (*FAST_SERVE, "--retention", str(max(600, 4 * args.seconds)))
        self.sched: subprocess.Popen | None = None
        self.sched_log = open(self.home.path / "sched.log", "ab")
        self.kills: collections.Counter[str] = collections.Counter()

    # -- components ----------------------------------------------------------------------

    def start_sched(self) -> None:
        self.sched = subprocess.Popen([*SCHED, str(self.script)], stdin=subprocess.DEVNULL,
                                      stdout=self.sched_log, stderr=self.sched_log,
                                      env=self.home.env, cwd=ROOT)

    def kill(self, component: str) -> bool:
        if component == "pcontrol":
            if self.home.pid() is None:
                return False
            self.home.kill_pcontrol()
            self.home.pcontrol("start", *self.serve)
        elif component == "pclient":
            agents = self.home.agents()
            if not agents:
                return False
            os.kill(self.rng.choice(agents), signal.SIGKILL)
        else:
            if self.sched is None or self.sched.poll() is not None:
                return False
            self.sched.kill()
            self.sched.wait()
            self.start_sched()
        self.kills[component] += 1
        return True

    def ensure_running(self) -> None:
        """What a kill may have left down (sched may have started pcontrol itself)."""
        if self.home.pid() is None:
            self.home.pcontrol("start", *self.serve)
        if self.sched is None or self.sched.poll() not in (None, 0):
            self.start_sched()

    # -- the run -------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        began = time.monotonic()
        self.home.start(self.serve)
        self.home.add_local_hosts(["h1", "h2"], slots=4)
        self.start_sched()
        end = began + args.seconds
        while True:
            wait = args.kill_every * self.rng.uniform(0.5, 1.5)
            if time.monotonic() + wait >= end:
                break
            time.sleep(wait)                 # the pace of the faults, not a wait for state
            self.ensure_running()
            self.kill(self.rng.choice(COMPONENTS))
        time.sleep(max(0.0, end - time.monotonic()))
        (self.home.path / "STOP").touch()
        soaked = time.monotonic() - began
        self.ensure_running()
        drained = self.drain()
        return self.report(soaked, drained)

    def drain(self) -> bool:
        """Let the last sched run its macros for everything out and leave (bounded)."""
        deadline = time.monotonic() + self.args.drain
        while time.monotonic() < deadline:
            assert self.sched is not None
            try:
                status = self.sched.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
            if status == 0:
                return True
            self.ensure_running()            # it failed (pcontrol gone at a bad moment)
        return False

    def report(self, soaked: float, drained: bool) -> int:
        if self.home.pid() is None:     # a pcontrol that sched started itself left with it
            self.home.pcontrol("start", *self.serve)
        records = self.home.jobs_sync(self.home.owner)
        lines = read_exit_log(self.home.path / "exits")
        tally = count(records, lines)
        outcomes = collections.Counter(
            (r["outcome"] or r["state"]) + (f" {r['status']}" if r["status"] is not None else "")
            for r in records)
        kills = ", ".join(f"{c} {self.kills[c]}" for c in COMPONENTS)
        rows = [
            ("soak seconds", f"{soaked:.1f}"),
            ("kills", kills),
            ("jobs submitted", tally.submitted),
            ("jobs with exactly one outcome", tally.one_outcome),
            ("lost (target 0)", len(tally.lost)),
            ("duplicated (target 0)", len(tally.duplicated)),
            ("reruns (at most the sched kills)", len(tally.reruns)),
            ("submitted twice", len(tally.submitted_twice)),
            ("not done at the end", len(tally.not_done)),
            ("macro saw another outcome", len(tally.wrong_outcome)),
            ("macro lines of unknown jobs", len(tally.strays)),
            ("retried after DOWN", sum(1 for r in records if r["attempts"])),
            ("outcomes", ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))),
            ("last sched drained and left", "yes" if drained else "NO"),
        ]
        width = max(len(name) for name, _ in rows)
        print(f"soak: sched + pcontrol + 2 local pclients, a SIGKILL every ~{self.args.kill_every:g} s"
              f" (seed {self.args.seed})")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
        for name in ("lost", "duplicated", "submitted_twice", "not_done", "wrong_outcome", "strays"):
            items = getattr(tally, name)
            if items:
                print(f"  {name}: {' '.join(map(str, items[:10]))}{' ...' if len(items) > 10 else ''}")
        if not drained:
            log = (self.home.path / "sched.log").read_text(errors="replace").splitlines()
            marks = [i for i, line in enumerate(log) if line.startswith("still out:")]
            if marks:
                print("  the last sched did not drain; what it still held:")
                for line in log[marks[-1]:marks[-1] + 8]:
                    print(f"    {line}")
        if not (tally.lost or tally.duplicated) and len(tally.reruns) <= self.kills["sched"] and drained:
            return 0
        print(f"  kept for a look: {self.home.path}")
        return 1

    def close(self, keep: bool) -> None:
        if self.sched is not None and self.sched.poll() is None:
            self.sched.kill()
            self.sched.wait()
        self.sched_log.close()
        if keep:        # leave the logs and exit log, end every process
            self.home.pcontrol("stop", "-kill", "-force", check=False)
            for pid in self.home.agents():
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        else:
            self.home.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to soak (default 60)")
    parser.add_argument("--kill-every", type=float, default=4.0, metavar="S",
                        help="mean seconds between kills, jittered by +-50%% (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--max-jobs", type=int, default=20000, help="most jobs the task makes")
    parser.add_argument("--drain", type=float, default=180.0, metavar="S",
                        help="seconds the last sched gets to finish what is out (default 180)")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.seconds <= 0 or args.kill_every <= 0:
        parser.error("--seconds and --kill-every must be > 0")
    soak = Soak(args)
    status = 1
    try:
        status = soak.run()
    finally:
        soak.close(keep=status != 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
