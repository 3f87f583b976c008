"""A job that leaves a daemon behind: its command double-forks a grandchild that calls
setsid (so it is in neither the job's process group nor its session) and lives on. When the
job is killed (`kill` at the sched prompt) or times out (`periods -timeout`), no process of
it may be left, whether it ran locally (sched's own runner) or on a controller host (a
pclient agent). The daemons are found by a marker in their argv and by their pid files.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from fault_harness import (PYTHON, ROOT, SCHED, FaultHome, Shell, alive, count, job_script,
                           pids_with_arg, read_exit_log, wait_until, wait_until_sync)
from pclient.containment import cgroup2_mount
from procs import children_of

#: The daemon: the classic double fork. The first child calls setsid and forks again; the
#: grandchild writes its pid file, points its stdio at /dev/null and sleeps; the parent
#: returns at once, so the job's shell goes on to its own long sleep.
DAEMONIZE = r'''
import os, sys, time
pidfile = sys.argv[1]
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
time.sleep(300)
'''


def test_no_process_of_a_killed_or_timed_out_job_is_left(
        fault_home: FaultHome, shells: Callable[[], Shell]) -> None:
    """Four jobs, each leaving a daemon: local and on controller host h1, each once killed
    and once timed out. After each has ended (once, with its outcome) none of their
    processes is left."""
    home = fault_home
    home.start()
    home.add_local_hosts(["h1"], slots=2)
    daemonize = home.path / "daemonize.py"
    daemonize.write_text(DAEMONIZE)
    pids = home.path / "pids"
    pids.mkdir()
    marker = f"fault-daemon-{home.path.name}"
    exit_log = home.path / "exits"
    # $0 is the job's token: the daemon's pid file is named by it. The shell joins the
    # marker from two halves, so that only the daemon's argv holds it whole.
    half = len(marker) // 2
    command = (f"m={marker[:half]}; {PYTHON} {daemonize} {pids}/$0 \"${{m}}{marker[half:]}\"; "
               "exec sleep 60")
    tasks = {("kill", "LOCAL"): "lkill", ("timeout", "LOCAL"): "ltime",
             ("kill", "h1"): "rkill", ("timeout", "h1"): "rtime"}
    script = ""
    for (end, host), name in tasks.items():
        extra = "  periods -timeout 2" if end == "timeout" else ""
        script += job_script(name, exit_log, [command], nmax=1, npending=1, host=host,
                             extra=extra, selectors=("killed", "timeout", "default"))
    sh = shells()
    sh.run(script + "run")

    def daemon_pids() -> list[int] | None:
        # a daemon writes NAME.tmp and renames it: only the renamed files are whole
        files = [f for f in pids.iterdir() if not f.name.endswith(".tmp")]
        return [int(f.read_text()) for f in files] if len(files) == 4 else None

    daemons = sh.run_until(wait_until(daemon_pids, "all four daemons have written their pid"))
    assert all(alive(pid) for pid in daemons)
    # the forks in between exit at once; then the marker finds exactly the daemons
    sh.run_until(wait_until(lambda: sorted(pids_with_arg(marker)) == sorted(daemons),
                            "only the daemons carry the marker"))
    mains = [job.pid for job in sh.sched.jobs.values() if job.local]
    mains += [r["pid"] for r in sh.run_until(home.jobs(home.owner))]
    assert len(mains) == 4 and all(mains)
    sessions = {os.getsid(pid) for pid in mains}
    assert not sessions & {os.getsid(pid) for pid in daemons}  # out of their jobs' sessions
    for job in sh.sched.jobs.values():
        if job.task in ("lkill", "rkill"):
            sh.run(f"kill {job.id}")
    sh.run("wait -timeout 30")
    left = [pid for pid in daemons if alive(pid)] + pids_with_arg(marker)
    assert left == [], f"processes of ended jobs are left: {sorted(set(left))}"
    lines = read_exit_log(exit_log)
    by_task = {job.argv[-1]: job.task for job in sh.sched.jobs.values()}
    outcomes = sorted((by_task[line.token], line.state, line.macro) for line in lines)
    assert outcomes == [("lkill", "KILLED", "killed"), ("ltime", "TIMEOUT", "timeout"),
                        ("rkill", "KILLED", "killed"), ("rtime", "TIMEOUT", "timeout")]
    remote = sh.run_until(wait_until(lambda: _harvested(home), "the h1 jobs are harvested"))
    tally = count(remote, [line for line in lines if by_task[line.token][0] == "r"])
    assert tally.clean and tally.submitted == 2, tally.summary()


async def _harvested(home: FaultHome) -> list[dict]:
    records = await home.jobs(home.owner)
    return records if len(records) == 2 and all(r["harvested"] for r in records) else []


@pytest.mark.skipif(os.environ.get("PCLIENT_CONTAINMENT", "auto") not in ("auto", "cgroup"),
                    reason="the guard of local jobs works through their cgroups")
def test_the_local_jobs_of_a_sched_killed_9_die_with_it(fault_home: FaultHome) -> None:
    """A `host LOCAL` job that leaves a daemon, and one that only sleeps, under a real `sched`
    killed with SIGKILL: the guard sched started with its first local job kills every process
    of both (the daemon included) and removes their cgroups; a sched that ends normally leaves
    no guard behind."""
    home = fault_home
    pids, marker, script = _jobs_that_leave_a_daemon(home)
    sched = subprocess.Popen([*SCHED, str(script)], stdin=subprocess.DEVNULL, env=home.env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        daemon = wait_until_sync(lambda: next((int(f.read_text()) for f in pids.iterdir()
                                               if not f.name.endswith(".tmp")), None),
                                 "the daemon has written its pid")
        jobs = wait_until_sync(lambda: _sleeping_children(sched.pid), "both jobs sleep")
        guards = [p for p in children_of(sched.pid) if p in _guards(sched.pid)]
        assert len(guards) == 1
        boxes = _job_cgroups(sched.pid)
        assert len(boxes) >= 2
    finally:
        sched.send_signal(signal.SIGKILL)
        sched.communicate()
    wait_until_sync(lambda: not any(alive(p) for p in [daemon, *jobs, *guards]) and
                    not pids_with_arg(marker), "the jobs and the guard are gone")
    assert not [b for b in boxes if os.path.exists(b)], "the jobs' cgroups are removed"
    # a normal end: its guard goes too
    script.write_text(job_script("quick", home.path / "exits", ["true"], nmax=1, npending=1,
                                 host="LOCAL") + "run\nwait\n")
    quick = subprocess.Popen([*SCHED, str(script)], stdin=subprocess.DEVNULL, env=home.env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert quick.wait(60) == 0, quick.communicate()[1]
    wait_until_sync(lambda: not _guards(quick.pid), "its guard is gone")


def test_the_local_jobs_under_keepers_of_a_sched_killed_9_die_with_it(fault_home: FaultHome) -> None:
    """The same where jobs get no cgroup (an ordinary user in a login session; the kind forced
    here): each job is under a keeper forked by sched's keeper server, which is the guard: when
    sched is killed with SIGKILL, it tells every keeper to kill all below it, a daemon included."""
    home = fault_home
    pids, marker, script = _jobs_that_leave_a_daemon(home, tell_pids=True)
    env = dict(home.env, PCLIENT_CONTAINMENT="subreaper")
    sched = subprocess.Popen([*SCHED, str(script)], stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def started() -> list[int] | None:
        found = [int(f.read_text()) for f in pids.iterdir()
                 if not f.name.endswith(".tmp") and f.read_text().strip()]
        return found if len(found) == 3 else None   # the two jobs and the daemon

    try:
        everything = wait_until_sync(started, "both jobs and the daemon have written their pids")
        assert all(alive(p) for p in everything)
    finally:
        sched.send_signal(signal.SIGKILL)
        sched.communicate()
    wait_until_sync(lambda: not any(alive(p) for p in everything) and not pids_with_arg(marker),
                    "the jobs and the daemon are gone")


def _jobs_that_leave_a_daemon(home: FaultHome, tell_pids: bool = False) -> tuple[Path, str, Path]:
    """A task of two local jobs, one that leaves a setsid daemon (its pid in PIDS/TOKEN) and
    sleeps, one that only sleeps (`tell_pids`: each writes its pid in PIDS/job.TOKEN first):
    the PIDS folder, the daemon's marker argument and the script."""
    daemonize = home.path / "daemonize.py"
    daemonize.write_text(DAEMONIZE)
    pids = home.path / "pids"
    pids.mkdir()
    marker = f"fault-daemon-{home.path.name}"
    half = len(marker) // 2
    tell = f"echo $$ > {pids}/job.$0; " if tell_pids else ""
    leaves = (f"{tell}m={marker[:half]}; {PYTHON} {daemonize} {pids}/$0 \"${{m}}{marker[half:]}\"; "
              "exec sleep 60")
    script = home.path / "local.sched"
    script.write_text(job_script("leaves", home.path / "exits", [leaves, f"{tell}exec sleep 61"], nmax=2,
                                 npending=2, host="LOCAL") + "run\nwait\n")
    return pids, marker, script


def _sleeping_children(pid: int) -> list[int] | None:
    sleeping = [child for child in children_of(pid) if _cmdline(child).startswith(b"sleep\0")]
    return sleeping if len(sleeping) == 2 else None


def _guards(pid: int) -> list[int]:
    return [p for p in pids_with_arg("psched-localguard") if f"pclient.{pid}.*".encode() in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _job_cgroups(pid: int) -> list[str]:
    """The job cgroups (pclient.PID.N) beside the cgroup of process `pid`."""
    mount = cgroup2_mount()
    with open(f"/proc/{pid}/cgroup") as f:
        own = next(line[3:].strip() for line in f if line.startswith("0::"))
    assert mount is not None
    return glob.glob(os.path.join(mount, own.lstrip("/"), f"pclient.{pid}.*"))
