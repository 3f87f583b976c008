"""One sched per $SCHED_HOME, and what outlives a sched process there (psched.scheduler.home),
through the real `sched`: a second one is refused naming the first, or runs under a name of
its own; job ids never repeat across restarts; `-exec` spacing survives a restart; local
tasks leave nothing in the run ledger; ended jobs are forgotten after the retention."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sched_process import kill_group, lines, start, wait_lines


def logging_task(log: Path, *lines_: str, command: str = "sleep 300") -> str:
    body = "\n".join(f"  {line}" for line in lines_)
    return f"""
task t
  host LOCAL
  command {command}
{body}
  task.exec
    exec sh -c "echo made >> {log}"
  end
  task.exit default
    exec sh -c "echo \\"ended $job_id $job_state\\" >> {log}"
  end
end
"""


def test_a_second_sched_on_a_home_is_refused_naming_the_first(home) -> None:
    path, runs = home
    log = path.parent / "log"
    first = start(path, logging_task(log, "npending 1") + "run\nwait\n")
    runs.append(first)
    wait_lines(log, 1, "the first sched made its job")
    second = start(path, logging_task(path.parent / "log2", "nmax 1") + "run\nwait\n")
    runs.append(second)
    status, out, err = second.finish()
    assert status == 1
    assert f"a sched already runs on {path} (pid {first.pid}" in err
    assert "sched --name NAME" in err
    assert lines(path.parent / "log2") == []  # it made nothing
    # Another name runs beside it, with files of its own.
    named = start(path, logging_task(path.parent / "log3", "nmax 1", command="true") + "run\nwait\n",
                  "--name", "second")
    runs.append(named)
    status, out, err = named.finish()
    assert status == 0, err
    assert lines(path.parent / "log3")[-1].split()[2] == "EXIT"
    assert (path / "sched-second.lock").exists() and (path / "jobids-second").exists()
    # A pure computation needs no lock at all.
    calc = start(path, "puts [expr {6 * 7}]\n")
    runs.append(calc)
    assert calc.finish()[:2] == (0, "42\n")
    first.signal(15)
    assert first.finish()[0] == 143


def test_a_bad_name_is_a_usage_error(home) -> None:
    path, runs = home
    run = start(path, "puts hi\n", "--name", "../x")
    runs.append(run)
    status, _, err = run.finish()
    assert status == 2 and "--name" in err


def test_job_ids_never_repeat_across_restarts(home) -> None:
    """Two runs of the same script log their exit macros by $job_id: no id twice."""
    path, runs = home
    log = path.parent / "log"
    script = logging_task(log, "nmax 3", "npending 3", command="true") + "run\nwait\n"
    for _ in range(2):
        run = start(path, script)
        runs.append(run)
        assert run.finish()[0] == 0
    ids = [line.split()[1] for line in lines(log) if line.startswith("ended")]
    assert len(ids) == 6 and len(set(ids)) == 6, ids


def test_exec_spacing_survives_a_restart(home) -> None:
    """A task launches at most every 30 s; restarted at once, it must not launch again."""
    path, runs = home
    log = path.parent / "log"
    script = logging_task(log, "periods -exec 30", command="true") + "run\nafter 1500\nstop\n"
    first = start(path, script)
    runs.append(first)
    assert first.finish()[0] == 0
    assert lines(log).count("made") == 1
    second = start(path, script)
    runs.append(second)
    assert second.finish()[0] == 0
    assert lines(log).count("made") == 1, lines(log)
    marks = json.loads((path / "marks.json").read_text())
    assert time.time() - marks["t"] < 60


def test_local_tasks_leave_nothing_in_the_run_ledger(home) -> None:
    """A sched killed mid-run leaves no count of a local task: the next one starts over."""
    path, runs = home
    log = path.parent / "log"
    script = logging_task(log, "nmax 2", "npending 2") + "run\nwait\n"
    first = start(path, script)
    runs.append(first)
    wait_lines(log, 2, "two jobs are made")
    kill_group(first.pid)
    first.finish()
    assert not (path / "made.log").exists() or (path / "made.log").read_text() == ""


def test_ended_jobs_are_forgotten_after_the_retention(home) -> None:
    path, runs = home
    run = start(path, """
retain -count 5
task t
  host LOCAL
  command true
  nmax 20
  npending 4
end
run
wait
puts [llength [split [string trim [jobs]] "\\n"]]
puts [retain]
catch {check 1} msg
puts $msg
puts [help jobs]
""")
    runs.append(run)
    status, out, err = run.finish()
    assert status == 0, err
    table, retain, check, *help_ = out.splitlines()
    assert table == "6"  # a header and the newest 5
    assert "the newest 5 ended jobs" in retain and "15 forgotten" in retain
    assert "no job 1 (forgotten after the retention" in check
    assert "retain" in " ".join(help_) and "10000" in " ".join(help_)


def test_a_block_of_job_ids_the_disk_refused_is_written_at_a_later_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A full disk when a block is reserved: the ids go on, and the file is written at the next
    id that can (until then a next sched might repeat them), said once and when it works."""
    import errno

    from psched.scheduler import home

    path = tmp_path / "jobids"
    write = home._write_atomically
    refusals = [2]

    def full_disk(target: Path, text: str) -> None:
        if refusals[0]:
            refusals[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        write(target, text)

    monkeypatch.setattr(home, "_write_atomically", full_disk)
    ids = home.JobIds(path)
    assert [ids.next(), ids.next()] == [1, 2]
    assert not path.exists()
    assert ids.next() == 3
    assert path.read_text() == f"{1 + home.ID_BLOCK}\n"
    assert caplog.text.count("cannot write") == 1 and "writing works again" in caplog.text
    assert home.JobIds(path).next() == 1 + home.ID_BLOCK
