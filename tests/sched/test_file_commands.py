"""The file commands through the real `sched` program: a task.exec that checks its input file,
a task.exit that appends one line per job to a report with open/puts/close, and a channel left
open that sched's exit closes (what was written reaches the file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCHED = [sys.executable, "-m", "psched.shell.cli"]


def test_a_task_exit_appends_a_line_per_job_to_a_report(tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("work\n")
    report = tmp_path / "out" / "report.txt"
    script = tmp_path / "report.sched"
    script.write_text(f"""
file mkdir [file dirname {report}]
task append
  host LOCAL
  command cat input.txt
  nmax 3
  task.exec
    if {{![file exists input.txt]}} {{ skip }}
  end
  task.exit default
    set ch [open {report} a]
    puts $ch "$job_id $exit_status [string trim $stdout]"
    close $ch
  end
end
run
wait -timeout 30
puts [llength [file channels file*]]
set leak [open leak.txt w]
puts $leak "left open: closed by sched's exit"
""")
    env = dict(os.environ, SCHED_HOME=str(tmp_path / "home"))
    done = subprocess.run(SCHED + [str(script)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]  # every channel the macros opened is closed
    lines = report.read_text().splitlines()
    assert len(lines) == 3 and len({line.split()[0] for line in lines}) == 3, lines
    assert all(line.split()[1:] == ["0", "work"] for line in lines), lines
    assert (tmp_path / "leak.txt").read_text() == "left open: closed by sched's exit\n"
