"""A controller job's long output is fetched only when its exit macro reads it: through the real
`pcontrol` and `sched` programs, counting the output requests pcontrol answered (`status -json`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SCHED = [sys.executable, "-m", "psched.shell.cli"]
PCONTROL = [sys.executable, "-m", "pcontrol"]
MIB = 1 << 20

WRITER = f"""\
import sys
out = b"".join(b"%07d line of the job's output\\n" % i for i in range(40000))[:{MIB}]
sys.stdout.buffer.write(out)
"""


def expected() -> str:
    return "".join("%07d line of the job's output\n" % i for i in range(40000))[:MIB]


@pytest.fixture(scope="module")
def home():
    """One pcontrol (its localhost agent added by the first sched) for the module."""
    path = Path(tempfile.mkdtemp(prefix="deferred.", dir="/tmp"))
    assert _run(path, *PCONTROL, "start").returncode == 0
    yield path
    subprocess.run([*PCONTROL, "stop", "-kill", "-force"], env=dict(os.environ, SCHED_HOME=str(path)),
                   capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


def _run(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), env=dict(os.environ, SCHED_HOME=str(home)), capture_output=True, text=True,
                          timeout=120)


def _sched(home: Path, name: str, macro: str, host: str = "NONE", writer: str = WRITER) -> str:
    """Run a task whose one job runs the Python `writer`, with `macro` as its task.exit 0; sched's stdout."""
    (home / f"{name}.py").write_text(writer)
    script = home / f"{name}.sched"
    script.write_text(f"""\
task {name}
  host {host}
  command {sys.executable} {home / f"{name}.py"}
  nmax 1
  task.exit 0
{macro}
  end
end
run
wait -timeout 60
""")
    done = _run(home, *SCHED, str(script))
    assert done.returncode == 0, done.stderr
    return done.stdout


def _output_requests(home: Path) -> int:
    status = _run(home, *PCONTROL, "status", "-json")
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)["output_requests"]


def test_a_macro_that_does_not_read_the_output_causes_no_fetch(home):
    before = _output_requests(home)
    out = _sched(home, "quiet", '    echo "quiet $job_state $exit_status"')
    assert "quiet EXIT 0" in out
    assert _output_requests(home) == before


def test_a_macro_that_reads_the_output_gets_its_exact_bytes(home):
    before = _output_requests(home)
    out = _sched(home, "reader", '    echo "<<$stdout>> [string length $stderr]"')
    assert out.split("<<", 1)[1].rsplit(">>", 1)[0] == expected()
    assert out.rstrip().endswith(">> 0")
    assert _output_requests(home) == before + 1  # stdout and stderr in one request


def test_the_stdout_queue_is_filled_on_its_first_use(home):
    before = _output_requests(home)
    out = _sched(home, "queued", '    echo "lines [queuesize stdout] [queuepop stdout]"')
    lines = out.split("lines ", 1)[1].split()
    assert int(lines[0]) == len(expected().splitlines()) and lines[1] == "0000000"
    assert _output_requests(home) == before + 1


def test_a_local_job_is_unchanged(home):
    before = _output_requests(home)
    out = _sched(home, "local", '    echo "<<$stdout>>"', host="LOCAL")
    assert out.split("<<", 1)[1].rsplit(">>", 1)[0] == expected()
    assert _output_requests(home) == before


ODD_BYTES = b"caf\xe9 \xff\x00 ok \xc3\xa9 \xe2\x82\xac \xe2\x82"
"""Latin-1 text, bytes no UTF-8 has, a NUL, valid UTF-8, and a sequence cut at its end."""
CODES = '"codes [join [lmap c [split $stdout {}] {scan $c %c}] ,]"'


def _tclsh_codes(program: list[str]) -> str:
    """What tclsh's `exec` makes of the program's output, as character codes (the oracle)."""
    words = " ".join("{%s}" % word for word in program)
    script = f"set stdout [exec {words}]\nputs {CODES}\n"
    done = subprocess.run(["tclsh"], input=script, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split("codes ", 1)[1].strip()


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is the oracle")
@pytest.mark.parametrize("host", ["NONE", "LOCAL"])
@pytest.mark.parametrize("times", [1, 1000], ids=["head", "fetched"])
def test_output_that_is_not_utf8_reads_as_tcl_exec_reads_it(home, host, times):
    """A byte that is not part of UTF-8 is the Latin-1 character of its value in $stdout, as
    tclsh's exec gives it (no replacement character, no byte lost), for a job's head and for
    an output long enough to be fetched when the macro reads it."""
    name = f"odd{host}{times}"
    out = _sched(home, name, f"    puts {CODES}", host=host,
                 writer=f"import sys\nsys.stdout.buffer.write({ODD_BYTES!r} * {times})\n")
    assert out.split("codes ", 1)[1].strip() == _tclsh_codes([sys.executable, str(home / f"{name}.py")])
