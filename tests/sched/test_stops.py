"""Clean stops and headless runs, through the real `sched` (stdin not a terminal, as under cron
or systemd): SIGTERM and SIGHUP end it as `quit -force` does; `exit` in a macro leaves after
the macro (or is refused while jobs are out); `stop` in a macro wakes `wait`; `wait` with no
argument keeps a standing task going until a signal; `after`; never a Python traceback."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from procs import alive
from sched_process import kill_group, lines, start, wait_lines


def standing(log: Path, npending: int = 2) -> str:
    """A standing task of long local jobs; its pids and exit macros go to `log`."""
    return f"""
task standing
  host LOCAL
  command sh -c {{echo "pid $$" >> {log}; exec sleep 300}}
  npending {npending}
  task.exit default
    exec sh -c "echo \\"exit $job_id $job_state\\" >> {log}"
  end
end
run
wait
puts "after wait"
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_ends_sched_as_quit_force_does(home, sig) -> None:
    """A standing task runs headless under `wait`; the signal ends sched: its local jobs are
    killed and recorded KILLED with their exit macros run, nothing is left running, and the
    status says which signal (128 + its number)."""
    path, runs = home
    log = path.parent / "log"
    run = start(path, standing(log))
    runs.append(run)
    pids = [int(line.split()[1]) for line in wait_lines(log, 2, "two jobs run") if line.startswith("pid")]
    run.signal(sig)
    status, out, err = run.finish()
    assert status == 128 + sig, err
    assert "after wait" not in out and "Traceback" not in err
    exits = sorted(line for line in lines(log) if line.startswith("exit"))
    assert [line.split()[2] for line in exits] == ["KILLED", "KILLED"], lines(log)
    assert not any(alive(pid) for pid in pids)


def test_exit_in_an_exit_macro_leaves_with_its_status(home) -> None:
    path, runs = home
    run = start(path, """
task t
  host LOCAL
  command true
  nmax 5
  task.exit 0
    puts "job $job_id"
    if {$job_id == 2} { exit 7 }
  end
end
run
wait
puts "not reached"
""")
    runs.append(run)
    status, out, err = run.finish()
    assert (status, out.split()) == (7, ["job", "1", "job", "2"]), err
    assert "Traceback" not in err


def test_exit_in_a_macro_with_jobs_out_is_refused_and_stop_wakes_wait(home) -> None:
    """Job 1 ends first and its macro's `exit 3` is refused (2 jobs out), as at top level; job
    2's macro calls `stop`: `wait` returns once job 3 has ended, and the script goes on."""
    path, runs = home
    run = start(path, """
task t
  host LOCAL
  task.exec
    command sleep [expr {0.3 * ($job_count + 1)}]
  end
  nmax 10
  npending 3
  task.exit 0
    puts "job $job_id"
    if {$job_id == 1} { exit 3 }
    if {$job_id == 2} { stop }
  end
end
run
wait -timeout 30
puts "waited"
""")
    runs.append(run)
    status, out, err = run.finish()
    assert status == 0, err
    assert out.split("\n")[:3] == ["job 1", "job 2", "job 3"], out
    assert out.endswith("waited\n")
    assert "not leaving: 2 job(s) still out" in err and 'use "exit -force"' in err
    assert "Traceback" not in err


def test_exit_in_task_exec_leaves_cleanly(home) -> None:
    path, runs = home
    run = start(path, """
task t
  host LOCAL
  nmax 5
  task.exec
    if {$job_count == 2} { exit 4 }
    command true
  end
end
run
wait
""")
    runs.append(run)
    status, out, err = run.finish()
    assert status == 4 and "Traceback" not in err, err


def test_after_waits_and_runs_scripts_later_and_wait_waits_for_them(home) -> None:
    """`after MS` waits with the loop running; `after MS SCRIPT` runs at the top level later;
    `wait` with no task left still waits for it; `after cancel` drops one."""
    path, runs = home
    run = start(path, """
set t0 [clock milliseconds]
after 300
puts "slept [expr {[clock milliseconds] - $t0 >= 300}]"
set x 1
set dropped [after 50 {puts never}]
after cancel $dropped
after 400 {puts "later x=$x"; resume t}
set ended 0
task t
  host LOCAL
  command true
  nmax 2
  task.exit 0
    incr ::ended
  end
end
pause t
run
wait
puts "done $ended"
""")
    runs.append(run)
    status, out, err = run.finish()
    assert status == 0, err
    assert out.splitlines() == ["slept 1", "later x=1", "done 2"], (out, err)


def test_after_idle_info_cancel_by_script_and_update_as_tcl(home) -> None:
    """Tcl's other forms of `after` and `update`, through sched (tclsh prints the same)."""
    path, runs = home
    run = start(path, """
set x 0
after idle {incr ::x}
update
puts "idle ran: $x"
set a [after 60000 {puts never}]
set b [after 60000 puts also never]
puts [expr {[after info] eq [list $b $a]}]
puts [after info $a]
after cancel puts also never
puts [expr {[after info] eq [list $a]}]
after cancel $a
puts "left: [llength [after info]]"
puts [catch {after info $a} m]$m
after 30 {puts b}; after 10 {puts a}; after idle {puts first}
after 60
""")
    runs.append(run)
    status, out, err = run.finish()
    assert status == 0, err
    assert out.splitlines() == ["idle ran: 1", "1", "{puts never} timer", "1", "left: 0",
                                '1event "after#1" doesn\'t exist',
                                "first", "a", "b"], (out, err)


def test_wait_says_truthfully_what_it_waits_for(home) -> None:
    path, runs = home
    run = start(path, """
task forever
  host LOCAL
  command sleep 0.05
end
run
catch {wait -timeout 0.5} msg
puts $msg
stop
""")
    runs.append(run)
    status, out, err = run.finish()
    assert status == 0, err
    assert "still waiting for: forever (" in out and "standing: makes jobs until `stop`" in out
    assert "deleted" not in out


def test_a_standing_task_runs_headless_until_stop_in_a_macro(home) -> None:
    """The README's pattern without nmax: `wait` keeps going (stdin is not a terminal) until
    a macro calls `stop`."""
    path, runs = home
    run = start(path, """
task backup
  host LOCAL
  command true
  periods -exec 0.1
  task.exit 0
    if {[incr ::ended] >= 3} { stop }
  end
end
set ended 0
run
wait
puts "stopped after $ended jobs"
""")
    runs.append(run)
    status, out, err = run.finish()
    assert status == 0, err
    assert out.strip() == "stopped after 3 jobs", (out, err)


def test_the_readme_backup_example_runs_as_written_headless(home) -> None:
    """The README's task block, as written, in a file run with stdin not a terminal (cron,
    systemd): sched keeps going after the script's `run` until it is stopped."""
    path, runs = home
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("A task is a standing rule for making jobs:", 1)[1].split("```tcl\n", 1)[1].split("```", 1)[0]
    assert block.startswith("task backup") and block.rstrip().endswith("run")
    run = start(path, block)
    runs.append(run)
    from waiting import wait_until_sync

    wait_until_sync(lambda: (path / "sched.lock").exists() and run.proc.poll() is None, "sched runs the task")
    with pytest.raises(Exception):
        run.proc.wait(timeout=1.5)  # it goes on: the script has ended, the work has not
    run.signal(signal.SIGTERM)
    status, _, err = run.finish()
    assert status == 143, err
    assert "going on until nothing remains to do" in err and "Traceback" not in err
