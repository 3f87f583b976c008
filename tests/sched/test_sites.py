"""`sched --sites DIR` run for real: one script per site, its tasks named SITE.TASK, a file with
an error reported with file:line and skipped (the tasks it had defined deleted again) while the
other sites run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sched_process import SCHED

SITE = """task ndt
  command echo "{text}"
  host LOCAL
  nmax 1
  task.exit 0
    puts "$task: [string trim $stdout] ({site})"
  end
end
"""


def sites(directory: Path, home: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SCHED, "--sites", str(directory), *extra], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, SCHED_HOME=str(home)))


def test_each_site_is_its_own_namespace_and_a_bad_file_is_skipped(tmp_path: Path, home) -> None:
    path, _ = home
    d = tmp_path / "sites"
    d.mkdir()
    (d / "lyon.sched").write_text(SITE.format(text="from Lyon", site="$task"))
    (d / "oslo.sched").write_text(SITE.format(text="from Oslo", site="$task"))
    (d / "rome.sched").write_text(SITE.format(text="from Rome", site="$task") + "task late\n  command true\n  host LOCAL\nend\n"
                                  "set x [expr {1 +}]\n")
    (d / "bern.sched").write_text(SITE.format(text="x", site="").replace("nmax 1", "nmax 1\n  frobnicate 2"))
    (d / "README").write_text("not a site")
    done = sites(d, path)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["lyon.ndt: from Lyon (lyon.ndt)", "oslo.ndt: from Oslo (oslo.ndt)"]
    assert f"site {d / 'rome.sched'} skipped:\n{d / 'rome.sched'}:13:" in done.stderr
    assert f"{d / 'bern.sched'}:5:3: unknown directive `frobnicate` in task `ndt`" in done.stderr
    assert "rome.ndt" not in done.stdout


def test_a_missing_directory_is_an_error(tmp_path: Path, home) -> None:
    done = sites(tmp_path / "none", home[0])
    assert done.returncode != 0 and "--sites" in done.stderr and "No such file" in done.stderr


def test_site_names_the_file_while_it_is_read(tmp_path: Path, home) -> None:
    d = tmp_path / "sites"
    d.mkdir()
    (d / "kyiv.sched").write_text('puts "reading $site"\n')
    done = sites(d, home[0])
    assert done.returncode == 0 and done.stdout == "reading kyiv\n", done.stderr
