"""Memory over months: peak memory after N/10 and after N jobs of a standing task.

    .venv/bin/python bench/bench_memory.py [--jobs 100000] [--keep 10000] [--host LOCAL|NONE]

`sched` runs as a subprocess on a throwaway $SCHED_HOME with one standing task of `true` jobs
(no nmax; 64 out at a time) whose exit macro prints every 1000th job id. When the ids pass
N/10 and N, the bench reads each measured process's peak resident size (VmHWM) and current
size (VmRSS) from /proc, then stops sched with SIGTERM (its clean stop).

`--host LOCAL` (the default): the task is `host LOCAL`, so sched is the one process. The peer,
run the same way in the same process tree, is the same sched with a retention too large to
forget anything (`retain -count` above N, `-age` a year): what memory does without the
retention.

`--host NONE`: the controller path. The task is `host NONE`, on the embedded default: sched
starts pcontrol itself (`pcontrol serve --spare-local-agent`, with its journal pcontrol.db in
$SCHED_HOME) and pcontrol its localhost agent (pclient), the three processes that live for
months. The bench measures the three (pcontrol's pid from its pid file, the agent as
pcontrol's `-m pclient` child) and what grows on disk: the journal (pcontrol.db and its -wal),
$SCHED_HOME in all, and the agent's runtime dir ($PCLIENT_RUNTIME_DIR, pclient.lease) and the
job mailboxes' temporary dir ($TMPDIR), each a throwaway of the bench's (files, bytes). sched
is stopped with SIGTERM, then `pcontrol stop -kill -force` on that home leaves nothing
running. pcontrol keeps a harvested job for its `--retention` (300 s by default) before it
forgets it (memory and journal), so its plateau is the jobs of 300 s (at 450 jobs a second,
some 135,000 jobs, 240 MB and a 64 MB journal, before harvested jobs were kept compact: 140 MB
at 550 jobs a second now) and is reached only then; its peak settles some minutes later still
(a first mark at 330 s gave 212 MB, 240 MB at 800 s; marks at 455 s and 1,020 s gave 242.7
and 243.5 MB; compact, 108.8 MB at 400 s and 141.0 at 822 s). So the first mark is taken at N/10 jobs or after
`--settle` s (600 by default: twice the retention), whichever comes later, and the
second at N jobs or twice the first's, whichever is more (the rows say how many). No peer:
`--peer` adds one (sched's retention off; pcontrol's is its own). The agent's spool
($PCLIENT_SPOOL_DIR) is a throwaway too; `true` jobs spool nothing, `--spool` makes the jobs
`echo hello` into a file (`stdout PATH`): the agent then spools each job's two streams until
pcontrol forgets the job (its retention), and sched fetches them. With `--settle 0`
and a small N (`--jobs 20000 --keep 1000 --settle 0`, a minute), sched's and the agent's rows
are meaningful and pcontrol's show it filling up to its retention, not a leak; sched's own
rows mean something only when `--keep` is at most N/10.

Target (issue 12): with the retention, the peak after N is within 10 % of the peak after N/10.
On a shared 2-core machine local jobs run at about 100 a second, so the default N = 100,000
takes a quarter of an hour per row; `--jobs 20000` shows the same shape in a few minutes.
Controller jobs run at about 500 a second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCHED = [str(BIN / "sched")]
PCONTROL = [str(BIN / "pcontrol")]


def script(keep: int, age: float, host: str, stdout: Path | None = None) -> str:
    command = "command true"
    if stdout is not None:          # every job's output spooled by the agent, fetched by sched
        command = f"command echo hello\n  stdout {stdout} -append -rotate 1000000 -keep 1"
    return f"""
retain -count {keep} -age {age}
task standing
  host {host}
  {command}
  npending 64
  task.exit default
    if {{$job_id % 1000 == 0}} {{ puts $job_id }}
  end
end
run
wait
"""


def memory(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of a process, in kB."""
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
    return fields["VmHWM"], fields["VmRSS"]


def children(pid: int) -> list[int]:
    """The pids of a process's children (/proc/PID/task/*/children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(word) for word in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def tree(path: Path) -> tuple[int, int]:
    """(files, bytes) under a directory (sizes as stat says; sparse files at their length)."""
    files = size = 0
    for top, _dirs, names in os.walk(path):
        for name in names:
            try:
                size += os.lstat(os.path.join(top, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


@dataclass
class Mark:
    jobs: int
    seconds: float
    memory: dict[str, tuple[int, int]]                      # process -> (peak kB, rss kB)
    disk: dict[str, tuple[int, int]] = field(default_factory=dict)  # place -> (files, bytes)
    held: int | None = None                                  # jobs in pcontrol's table


class Run:
    """One standing task under sched, started as a user would, measured at its marks."""

    def __init__(self, host: str, keep: int, age: float, spool: bool = False):
        self.host = host
        self.tmp = Path(tempfile.mkdtemp(prefix="bm-", dir="/tmp"))
        self.home = self.tmp / "home"
        self.runtime = self.tmp / "runtime"
        self.mailtmp = self.tmp / "tmp"
        self.spool = self.tmp / "spool"
        for folder in (self.runtime, self.mailtmp, self.spool):
            folder.mkdir(mode=0o700)
        path = self.tmp / "standing.sched"
        path.write_text(script(keep, age, host, self.tmp / "out.txt" if spool else None))
        self.env = dict(os.environ, SCHED_HOME=str(self.home))
        if host != "LOCAL":  # the agent's, the mailboxes' and the spool's places: ours, not the user's
            self.env.update(PCLIENT_RUNTIME_DIR=str(self.runtime), TMPDIR=str(self.mailtmp),
                            PCLIENT_SPOOL_DIR=str(self.spool))
            self.env.pop("PCONTROL_CONNECT", None)
        self.proc = subprocess.Popen([*SCHED, str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=self.env)

    def pids(self) -> dict[str, int]:
        pids = {"sched": self.proc.pid}
        if self.host == "LOCAL":
            return pids
        pcontrol = int((self.home / "pcontrol.pid").read_text().split()[0])
        pids["pcontrol"] = pcontrol
        agents = [pid for pid in children(pcontrol) if "pclient" in cmdline(pid)]
        if len(agents) == 1:
            pids["agent"] = agents[0]
        return pids

    def disk(self) -> dict[str, tuple[int, int]]:
        places = {}
        for name in ("pcontrol.db", "pcontrol.db-wal"):
            path = self.home / name
            places[f"journal {name}"] = (1, path.stat().st_size) if path.exists() else (0, 0)
        return {**places,
                "$SCHED_HOME": tree(self.home),
                "agent runtime dir": tree(self.runtime),
                "mailbox $TMPDIR": tree(self.mailtmp),
                "agent spool": tree(self.spool)}

    def held(self) -> int | None:
        """How many jobs pcontrol holds (`pcontrol status -json`): its memory follows them."""
        status = subprocess.run([*PCONTROL, "status", "-json"], env=self.env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60)
        try:
            return int(json.loads(status.stdout)["totals"]["jobs"])
        except (ValueError, KeyError, TypeError):
            return None

    def measure(self, jobs: int, settle: float) -> list[Mark]:
        """Marks at jobs/10 (or after `settle` s, whichever comes later) and at jobs (or at
        twice the first mark's jobs, when the settling took it past jobs/2)."""
        rows: list[Mark] = []
        target = max(1000, jobs // 10)
        t0 = time.perf_counter()
        for line in self.proc.stdout:
            done = int(line)
            now = time.perf_counter() - t0
            if done < target or now < settle:
                continue
            pids = self.pids()
            rows.append(Mark(done, now, {name: memory(pid) for name, pid in pids.items()},
                             self.disk() if self.host != "LOCAL" else {},
                             self.held() if self.host != "LOCAL" else None))
            if len(rows) == 2:
                break
            target = max(jobs, 2 * done)
            settle = 0.0
        return rows

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.host != "LOCAL":  # sched leaves its controller running: stop it and its agent
            subprocess.run([*PCONTROL, "stop", "-kill", "-force"], env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run(jobs: int, keep: int, age: float, host: str = "LOCAL", settle: float = 0.0,
        spool: bool = False) -> list[Mark]:
    """The marks at jobs/10 (or after `settle` s, whichever comes later) and at jobs."""
    standing = Run(host, keep, age, spool)
    try:
        return standing.measure(jobs, settle)
    finally:
        standing.stop()


def growth(rows: list[Mark], name: str) -> float:
    return rows[1].memory[name][0] / rows[0].memory[name][0] - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--keep", type=int, default=10_000, help="retain -count for the measured run")
    parser.add_argument("--host", choices=("LOCAL", "NONE"), default="LOCAL",
                        help="LOCAL: sched alone; NONE: sched, pcontrol and its localhost agent")
    parser.add_argument("--settle", type=float, default=None, metavar="S",
                        help="take the first mark no sooner than S s in (default: 0 for LOCAL, "
                             "600 for NONE: twice pcontrol's retention of 300 s)")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=None,
                        help="also run the peer with sched's retention off (default: for LOCAL only)")
    parser.add_argument("--spool", action="store_true",
                        help="jobs `echo hello` into a file (stdout PATH): the agent spools every "
                             "job's output and sched fetches it")
    args = parser.parse_args()
    settle = args.settle if args.settle is not None else (0.0 if args.host == "LOCAL" else 600.0)
    peer = args.peer if args.peer is not None else args.host == "LOCAL"
    print(f"memory with a standing `host {args.host}` task of "
          f"{'`echo hello` jobs into a file' if args.spool else '`true` jobs'} ({args.jobs} jobs"
          + (f", first mark after {settle:.0f} s at the earliest" if settle else "") + ")")
    print(f"{'runner':<44} {'process':<9} {'jobs':>8} {'peak MB':>8} {'rss MB':>8} {'seconds':>8}")
    runs = [(f"sched (retain -count {args.keep}, 1 day)", args.keep, 86_400.0)]
    if peer:
        runs.append(("sched, retention off (peer)", args.jobs * 10, 365 * 86_400.0))
    results = {}
    for name, keep, age in runs:
        rows = run(args.jobs, keep, age, args.host, settle, args.spool)
        results[name] = rows
        for mark in rows:
            for process, (peak, rss) in mark.memory.items():
                print(f"{name:<44} {process:<9} {mark.jobs:>8} {peak / 1024:>8.1f} {rss / 1024:>8.1f} "
                      f"{mark.seconds:>8.1f}")
    first = next(iter(results.values()))
    if first and first[0].disk:
        print(f"\n{'on disk':<44} {'jobs':>8} {'files':>8} {'MB':>10}")
        for mark in first:
            for place, (files, size) in mark.disk.items():
                print(f"{place:<44} {mark.jobs:>8} {files:>8} {size / 1e6:>10.3f}")
    if len(first) != 2:
        return 1
    print()
    worst = 0.0
    for process in first[1].memory:
        if process not in first[0].memory:
            continue
        grew = growth(first, process)
        worst = max(worst, grew)
        held = (f"; its job table {first[0].held} and {first[1].held} jobs"
                if process == "pcontrol" and first[0].held is not None else "")
        print(f"{process}: peak after {first[1].jobs} vs after {first[0].jobs} jobs, with the retention: "
              f"{grew:+.1%} (target within 10 %){held}")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
