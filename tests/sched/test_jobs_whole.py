"""Local jobs through the real `sched` program: nothing of a job outlives its timeout or kill,
its output files get its exact bytes, and timeouts keep their moment while a macro blocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from waiting import wait_until_sync
from procs import alive, finish

SCHED = [sys.executable, "-m", "psched.shell.cli"]
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


def sched(script: Path, home: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, SCHED_HOME=str(home))
    return subprocess.Popen(SCHED + [str(script)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=script.parent, text=True, **kwargs)


def test_a_timeout_is_kept_while_an_exit_macro_blocks_in_exec(tmp_path):
    """Job 1's exit macro runs `exec sleep 5`; job 2 (-timeout 1) is killed at ~1 s all the
    same (seen from outside), and its reported run time is ~1 s, not ~5."""
    pidfile = tmp_path / "slow.pid"
    script = tmp_path / "ontime.sched"
    script.write_text(f"""
task blocker
  host LOCAL
  command sleep 0.3
  nmax 1
  task.exit 0
    exec sleep 5
    echo "blocker done"
  end
end
task slow
  host LOCAL
  command sh -c {{echo $$ > {pidfile}; exec sleep 100}}
  periods -timeout 1
  nmax 1
  task.exit timeout
    echo "slow $job_state $job_elapsed"
  end
end
run
wait -timeout 30
""")
    proc = sched(script, tmp_path)
    wait_until_sync(lambda: pidfile.exists() and pidfile.read_text().strip(), "the slow job started")
    started = time.monotonic()
    pid = int(pidfile.read_text())
    wait_until_sync(lambda: not alive(pid), "the slow job was killed", timeout=10)
    gone_after = time.monotonic() - started
    out, _ = finish(proc)
    assert gone_after < 1.6, f"the -timeout 1 job died {gone_after:.2f} s after it started"
    lines = out.splitlines()
    assert "blocker done" in lines
    (slow,) = [line for line in lines if line.startswith("slow ")]
    state, elapsed = slow.split()[1:]
    assert state == "TIMEOUT" and 0.9 <= float(elapsed) < 1.5, slow


@pytest.mark.parametrize("how", ["timeout", "kill"])
def test_nothing_of_a_local_job_survives_its_timeout_or_kill(tmp_path, how):
    escaped, daemon = tmp_path / "escaped.pid", tmp_path / "daemon.pid"
    double_fork = (f"import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                   f"        open('{daemon}', 'w').write(str(os.getpid()))\n"
                   f"        os.execve('/bin/sleep', ['sleep', '1000'], {{}})\n    os._exit(0)\nos.wait()\n")
    (tmp_path / "fork.py").write_text(double_fork)
    script = tmp_path / "escape.sched"
    stop = "periods -timeout 2" if how == "timeout" else ""
    script.write_text(f"""
task escape
  host LOCAL
  command sh -c {{env -i setsid sh -c 'sleep 1000 & echo $! > {escaped}'; {sys.executable} {tmp_path}/fork.py; sleep 1000}}
  {stop}
  nmax 1
  task.exit default
    echo "escape $job_state"
  end
end
run
""" + ("wait -timeout 30\n" if how == "timeout" else
       "catch {wait -timeout 3 escape}\nkill 1\nwait -timeout 30\n"))
    proc = sched(script, tmp_path)
    wait_until_sync(lambda: all(f.exists() and f.read_text().strip() for f in (escaped, daemon)),
                    "the job's escapees started")
    pids = [int(f.read_text()) for f in (escaped, daemon)]
    out, _ = finish(proc)
    assert out.split() == ["escape", "TIMEOUT" if how == "timeout" else "KILLED"]
    wait_until_sync(lambda: not any(alive(p) for p in pids), "every process of the job is gone", timeout=5)


def test_output_files_get_the_exact_bytes_and_stdout_stays_bounded(tmp_path):
    """All 256 byte values and NULs, 12 MB of them on stdout, a little on stderr (appended)."""
    writer = tmp_path / "bytes.py"
    writer.write_text("import sys\n"
                      "block = bytes(range(256)) * 4096 + b'\\0' * 4096\n"
                      "for i in range(12):\n"
                      "    sys.stdout.buffer.write(block)\n"
                      "sys.stderr.buffer.write(bytes(range(256)))\n")
    out_file, err_file = tmp_path / "out.bin", tmp_path / "err.bin"
    err_file.write_bytes(b"before\n")
    script = tmp_path / "bytes.sched"
    script.write_text(f"""
task bytes
  host LOCAL
  command {sys.executable} {writer}
  stdout {out_file}
  stderr -append {err_file}
  nmax 1
  task.exit 0
    puts "len [string length $stdout]"
    puts [lindex [split [string trim $stdout] \\n] end]
  end
end
run
wait -timeout 60
""")
    out, _ = finish(sched(script, tmp_path))
    block = bytes(range(256)) * 4096 + b"\0" * 4096
    assert out_file.read_bytes() == block * 12  # 12.6 MB, byte for byte
    assert err_file.read_bytes() == b"before\n" + bytes(range(256))
    length = int(out.splitlines()[0].split()[1])
    assert length < 1.2 * (1 << 20), "$stdout is bounded (1 MiB kept)"
    assert f"[sched: output cut: kept {1 << 20} of {len(block) * 12} bytes]" in out
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")], "no spool file is left"
