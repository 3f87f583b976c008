"""`sched --simulate` (issue 15) as a user runs it: a subprocess on a fresh $SCHED_HOME.

Each fault kind of the faults file, its error messages, `exec` in a simulation, sync runs and
NetJobs files simulated, the JSON lines, a simulated day in seconds, and the promise that a
simulation starts no process, opens no socket and writes no file (checked with audit hooks in
the sched process itself). The comparison with a real run is tests/e2e/test_simulate_vs_real.py;
the guard that the simulation runs the production classes is test_simulation_guard.py.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sched_process import SCHED

START = "2025-03-03 10:00"  # a Monday


def simulate(tmp_path: Path, script: str, faults: str | None = None, *args: str,
             duration: str = "60s") -> tuple[int, str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    path = tmp_path / "script.sched"
    path.write_text(script)
    argv = [*SCHED, "--simulate", duration, "--start", START, *args]
    if faults is not None:
        (tmp_path / "faults.txt").write_text(faults)
        argv += ["--faults", str(tmp_path / "faults.txt")]
    done = subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, SCHED_HOME=str(home)))
    assert list(home.iterdir()) == [], "a simulation wrote to $SCHED_HOME"
    return done.returncode, done.stdout, done.stderr


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def ends(out: str) -> list[tuple[str, int, str, str]]:
    """(task, job, host, outcome) of each job's end, from --json output."""
    return [(e["task"], e["job"], e["host"], e["outcome"]) for e in events(out)
            if e["type"] == "event" and e["event"] == "end"]


HOSTS = "controller host add h1 -slots 2\ncontroller host add h2 -slots 1\n"


def test_job_rules_exit_crash_timeout_and_default(tmp_path: Path) -> None:
    script = HOSTS + """
task a
  command backup.sh
  host h1 -required
  nmax 2
  task.exit default
    set ::said [string trim $stdout]
  end
end
task b
  command probe --fast
  host h1 -required
  nmax 1
end
task c
  command sync-db
  host h2 -required
  periods -timeout 5
  nmax 1
end
task d
  command true
  host h2 -required
  nmax 1
end
run
wait
puts "a said: $said"
"""
    faults = """
job "backup.sh" takes 3s exits 2 prints "partial copy\\n"
job "probe *" takes 1s crashes SIGABRT
job "sync-db" times out
"""
    status, out, err = simulate(tmp_path, script, faults, "--json")
    assert status == 0, err
    assert "a said: partial copy" in out  # the exit macro saw what the faults file says it printed
    got = ends(out)
    assert ("a", 1, "h1", "EXIT 2") in got and ("a", 5, "h1", "EXIT 2") in got
    assert ("b", 2, "h1", "CRASH SIGABRT") in got
    assert ("c", 3, "h2", "TIMEOUT") in got
    assert ("d", 4, "h2", "EXIT 0") in got  # default: --job-time 1 s, exit 0
    timed = {(e["task"], e["job"]): e["t"] for e in events(out) if e.get("event") == "end"}
    assert timed[("a", 1)] == pytest.approx(3.0) and timed[("c", 3)] == pytest.approx(5.0)
    assert timed[("d", 4)] == pytest.approx(6.0)  # after c's timeout freed h2's one slot, 1 s
    summary = {e["task"]: e for e in events(out) if e["type"] == "task"}
    assert summary["a"]["outcomes"] == {"EXIT 2": 2} and summary["a"]["made"] == 2


def test_job_time_and_seeded_ranges(tmp_path: Path) -> None:
    script = HOSTS + "task t\n  command work\n  nmax 6\nend\nrun\n"
    faults = 'job "work" takes 1s..100s\n'
    runs = [simulate(tmp_path, script, faults, "--json", "--seed", seed, duration="1h")[1] for seed in ("1", "1", "2")]
    durations = [[e["t"] for e in events(out) if e.get("event") == "end"] for out in runs]
    assert durations[0] == durations[1], "the same seed draws the same times"
    assert durations[0] != durations[2], "another seed draws others"
    status, out, err = simulate(tmp_path, script, None, "--json", "--job-time", "2.5")
    assert status == 0, err
    assert [e["t"] for e in events(out) if e.get("event") == "end"][:2] == [2.5, 5.0]


def test_exec_is_recorded_and_answered_by_the_faults_file(tmp_path: Path) -> None:
    script = """
puts "hostname: [exec hostname]"
puts "uname: <[exec uname -a]>"
if {[catch {exec df /data} err]} { puts "df failed: $err" }
task t
  host LOCAL
  nmax 1
  task.exec
    command echo [exec pick-target]
  end
  task.exit default
    puts "job ran: $job_command on $job_host: $job_state"
  end
end
run
"""
    faults = 'exec "hostname" returns web1\nexec "df *" fails "df: /data: no such file"\nexec "pick-*" returns "db7"\n'
    status, out, err = simulate(tmp_path, script, faults)
    assert status == 0, err
    assert "hostname: web1" in out
    assert "uname: <>" in out  # no rule: an empty result
    assert "df failed: df: /data: no such file" in out
    assert "job ran: echo db7 on LOCAL: EXIT" in out
    recorded = [line for line in out.splitlines() if " exec " in line]
    assert len(recorded) == 4 and "uname -a -> ''" in recorded[1], recorded


def test_host_down_for_a_while_requeues_its_job_and_comes_back(tmp_path: Path) -> None:
    script = HOSTS + """
task long
  command crunch
  host h2
  retry 1
  nmax 1
end
task later
  command true
  host h2 -required
  periods -exec 100
  nmax 2
end
run
"""
    faults = 'job "crunch" takes 30s\nhost h2 down at 10s for 60s\n'
    status, out, err = simulate(tmp_path, script, faults, "--json", duration="5m")
    assert status == 0, err
    evs = events(out)
    requeued = [e for e in evs if e.get("event") == "requeued"]
    assert len(requeued) == 1 and requeued[0]["task"] == "long" and requeued[0]["host"] == "h2"
    assert requeued[0]["t"] == pytest.approx(10.0)
    assert ("long", 1, "h1", "EXIT 0") in ends(out)  # run again, on the other host
    ups = [e["t"] for e in evs if e.get("event") == "host" and e["host"] == "h2" and e["outcome"] == "UP"]
    assert ups[0] == 0 and ups[1] >= 70.0  # no agent there for the 60 s; then the retry backoff
    later = [e for e in evs if e.get("event") == "start" and e["task"] == "later"]
    # h2's one slot is long's until h2 goes down; nothing starts there while it is down
    assert later and later[0]["t"] == pytest.approx(ups[1]), later
    host = {e["host"]: e for e in evs if e["type"] == "host"}["h2"]
    assert host["downs"] == 1 and host["down_for"] >= 60.0


def test_host_killed_and_clock_offset(tmp_path: Path) -> None:
    script = HOSTS + """
after 2000
puts [controller check host h2 -json]
"""
    faults = "host h2 clock +250ms\nhost h1 killed at 1s\n"
    status, out, err = simulate(tmp_path, script, faults, duration="10s")
    assert status == 0, err
    record = json.loads(out[out.index("{"):out.index("\n}") + 2])
    assert record["agent"]["clock_skew"] == pytest.approx(0.25)
    assert record["agent"]["clock_offset"] == pytest.approx(0.25, abs=0.01)  # measured by clock probes
    states = re.findall(r"\sh1\s+host\s+(\S+)", out)
    assert states == ["CONNECTING", "UP", "DOWN", "CONNECTING", "UP"], out  # killed, then started again
    assert "h1 fault agent killed (faults line 2)" in " ".join(out.split())


def test_controller_unreachable_holds_jobs_until_it_is_back(tmp_path: Path) -> None:
    script = HOSTS + """
task t
  command true
  periods -exec 30
  nmax 4
end
run
"""
    faults = "controller unreachable at 20s for 60s\n"
    status, out, err = simulate(tmp_path, script, faults, "--json", duration="5m")
    assert status == 0, err
    evs = events(out)
    starts = [e["t"] for e in evs if e.get("event") == "start"]
    assert starts[:2] == [0.0, 30.0] or starts[0] == 0.0
    assert all(not (20.0 < t < 80.0) for t in starts), starts  # nothing reaches pcontrol meanwhile
    assert any("controller connection lost" in e["detail"] for e in evs if e.get("event") == "message")
    assert len(starts) == 4 and ends(out)[-1][3] == "EXIT 0"


@pytest.mark.parametrize("line, where, message", [
    ("jobs * takes 1s", "1:1", "unknown rule 'jobs'"),
    ('job "x" takes 5q', "1:15", "expected a time span"),
    ('job "x" takes 5s..1s', "1:15", "ends before it starts"),
    ('job "x" exits 300', "1:15", "exit status 0..255"),
    ('job "x" crashes SIGNOPE', "1:17", "unknown signal"),
    ('job "x" exits 1 crashes', "1:17", "one ending"),
    ('job "x" sometimes', "1:9", "unexpected 'sometimes'"),
    ('job "x', "1:5", "missing close-quote"),
    ("host h1 down at", "1:16", "expected a time at the end of the line"),
    ("host h1 down at 25:00", "1:17", "expected a time"),
    ("host h1 sideways", "1:9", "expected down, killed or clock"),
    ("host h1 clock fast", "1:15", "expected a time span"),
    ("controller unreachable at 1h", "1:29", "expected `for`"),
    ("controller down at 1h for 5m", "1:12", "expected `unreachable`"),
    ('exec "x" yields y', "1:10", "expected `returns TEXT` or `fails TEXT`"),
    ("host h1 killed at 1h for 5m", "1:22", "unexpected 'for'"),
])
def test_malformed_faults_file_is_refused_with_file_line_column(tmp_path: Path, line: str, where: str,
                                                                 message: str) -> None:
    status, out, err = simulate(tmp_path, "puts never\n", line + "\n")
    assert status == 2
    assert out == ""  # refused before anything ran
    first = err.splitlines()[0]
    assert first.startswith(f"{tmp_path / 'faults.txt'}:{where}: "), err
    assert message in first, err
    column = int(where.split(":")[1])
    assert err.splitlines()[2] == "    " + " " * (column - 1) + "^", err


def test_a_later_line_is_named(tmp_path: Path) -> None:
    status, _, err = simulate(tmp_path, "puts never\n", "# fine\njob * takes 1s\n\nhost h1 down at soon\n")
    assert status == 2 and ":4:17: expected a time" in err.splitlines()[0], err


def test_options_are_checked(tmp_path: Path) -> None:
    for argv, message in ((["--simulate", "0s"], "more than 0"), (["--simulate", "soon"], "--simulate"),
                          (["--simulate", "1h", "--start", "tomorrow"], "--start"),
                          (["--faults", "x"], "go with --simulate"), (["-s"], "-s goes with --netjobs")):
        done = subprocess.run([*SCHED, *argv, "-c", "puts hi"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr, (argv, done.stderr)
    helped = subprocess.run([*SCHED, "--help"], capture_output=True, text=True, timeout=60)
    assert "--simulate DURATION" in helped.stdout and "--faults FILE" in helped.stdout


def test_json_lines_hold_events_tasks_and_hosts(tmp_path: Path) -> None:
    status, out, err = simulate(tmp_path, HOSTS + "task t\n  command true\n  nmax 2\nend\nrun\n", None, "--json")
    assert status == 0, err
    parsed = events(out)
    assert len(parsed) == len(out.splitlines())  # every line is JSON
    assert {e["type"] for e in parsed} == {"event", "task", "host"}
    start = next(e for e in parsed if e.get("event") == "start")
    assert start["time"].startswith("2025-03-03T10:00:00") and start["task"] == "t" and start["job"] == 1
    assert {"task": "t", "made": 2} .items() <= next(e for e in parsed if e["type"] == "task").items()


def test_sync_task_and_netjobs_file_are_simulated(tmp_path: Path) -> None:
    script = """
controller host add n1
controller host add n2
controller host add n3
sync fio -minhosts 2
  target n1 ./fio.sh 4k
  target n2 ./fio.sh 4k
  target n3 ./fio.sh 4k
end
task load
  sync fio
  periods -exec 3600
  nmax 2
  task.exit default
    puts "sync job $job_id: $job_state $exit_status"
  end
end
run
"""
    faults = 'job "./fio.sh*" on n3 from 30m takes 5s crashes\njob "./fio.sh*" takes 30s..90s\n'
    status, out, err = simulate(tmp_path, script, faults, duration="3h")
    assert status == 0, err
    assert "sync job 1: EXIT 0" in out and "sync job 2: EXIT 0" in out  # 2 of 3 are enough
    config = tmp_path / "tests.conf"
    config.write_text('test0:\nhostA: "echo hi"\nhostB: "sleep 2"\n-timeout: 1s\nend\n')
    (tmp_path / "nj.faults").write_text('job "*sleep 2*" takes 2s\n')
    home = tmp_path / "nj-home"
    home.mkdir()
    done = subprocess.run([*SCHED, "--netjobs", str(config), "-s", "--faults", str(tmp_path / "nj.faults")],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, SCHED_HOME=str(home)))
    assert done.returncode == 0, done.stderr
    assert 'hostA: "echo hi" -> EXIT 0' in done.stdout
    assert 'hostB: "sleep 2" -> TIMEOUT' in done.stdout
    assert "verdict: failure" in done.stdout
    assert list(home.iterdir()) == []


def test_a_simulated_day_takes_seconds(tmp_path: Path) -> None:
    """A simulation costs per look and per job, not per second: with the default `-poll 1` each
    task is looked at 86,400 times a day (as the real scheduler does), so these tasks poll
    every minute, as a script meant to run for months would."""
    lines = [HOSTS]
    for i in range(30):
        period = (300, 900, 3600)[i % 3]
        lines.append(f"task t{i}\n  command job{i}\n  periods -poll 60 -exec {period}\n"
                     + ("  trange 08:00 18:00\n" if i % 2 else "") + "end\n")
    lines.append("run\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    status, out, err = simulate(tmp_path, "".join(lines), 'job "*" takes 10s..60s\n', "--json", duration="1d")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert status == 0, err
    started = sum(1 for e in events(out) if e.get("event") == "start")
    print(f"a simulated day: {started} jobs in {wall:.2f} s wall, {cpu:.2f} s CPU")
    assert started > 1500
    assert cpu < 20, f"a simulated day took {cpu:.1f} s of CPU"
    last = max(e["t"] for e in events(out) if e["type"] == "event")
    assert last == pytest.approx(86400.0, abs=1)


AUDIT = r"""
import sys
seen = []
WRITE = ("w", "a", "x", "+")
def hook(event, args):
    if event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec",
                 "os.spawn", "pty.spawn"):
        seen.append((event, repr(args)[:200]))
    elif event in ("socket.__new__", "socket.connect", "socket.bind", "socket.socketpair"):
        seen.append((event, repr(args)[:200]))
    elif event == "open" and isinstance(args[1], str) and any(c in args[1] for c in WRITE):
        seen.append((event, repr(args)[:200]))
    elif event == "open" and isinstance(args[2], int) and args[2] & 0o3 and not str(args[0]).startswith("/dev/"):
        seen.append((event, repr(args)[:200]))
    elif event in ("os.mkdir", "os.rename", "os.remove", "os.replace", "shutil.rmtree", "os.truncate"):
        seen.append((event, repr(args)[:200]))
def kept(event, args):
    # the language's parser cache ($XDG_CACHE_HOME/psched), which every sched keeps: not the simulation's
    where = str(args[0]) if args else ""
    return "/.cache/psched" in where or where.startswith(os.environ.get("XDG_CACHE_HOME", "//"))
def filtered(event, args):
    if not kept(event, args):
        hook(event, args)
import os
sys.addaudithook(filtered)
from psched.shell.cli import main
status = main(sys.argv[1:])
sys.stdout.flush()
print("AUDIT " + repr(seen), file=sys.stderr)
sys.exit(status)
"""


def test_a_simulation_starts_no_process_opens_no_socket_writes_no_file(tmp_path: Path) -> None:
    script = HOSTS + """
controller status
task t
  command rm -rf /
  periods -exec 10
  nmax 20
  retry 1
  stdout /tmp/should-not-exist-{name}
  joblog /tmp/should-not-exist-{name}.log
  task.exit default
    set ::last $job_state
    set ch [open /tmp/should-not-exist-{name}.report a]; puts $ch "$job_id $job_state"; close $ch
    file mkdir /tmp/should-not-exist-{name}.dir
    file delete -force {keep}
  end
end
task l
  command touch /tmp/should-not-exist-{name}.local
  host LOCAL
  nmax 3
end
puts [exec rm -rf /tmp/x]
run
""".replace("{name}", tmp_path.name).replace("{keep}", str(tmp_path / "keep"))
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "keep").mkdir()
    (tmp_path / "s.sched").write_text(script)
    (tmp_path / "f.txt").write_text("host h1 killed at 15s\ncontroller unreachable at 60s for 30s\n")
    done = subprocess.run([sys.executable, "-c", AUDIT, "--simulate", "5m", "--faults", str(tmp_path / "f.txt"),
                           str(tmp_path / "s.sched")], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, SCHED_HOME=str(home)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    audit = done.stderr.rsplit("AUDIT ", 1)[1].strip()
    assert audit == "[]", audit
    assert list(home.iterdir()) == []
    assert not list(Path("/tmp").glob(f"should-not-exist-{tmp_path.name}*"))
    assert "would write" in done.stdout and "rm -rf /tmp/x -> ''" in done.stdout
    assert f"open /tmp/should-not-exist-{tmp_path.name}.report a (kept in memory)" in done.stdout
    assert f"file delete -force {tmp_path / 'keep'}" in done.stdout and (tmp_path / "keep").is_dir()
    assert not Path("/nonexistent").exists()
