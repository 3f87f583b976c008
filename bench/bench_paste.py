#!/usr/bin/env python3
"""Pasting a script into the prompt (issue 12): time and peak memory, next to `sched FILE`.

    .venv/bin/python bench/bench_paste.py [--lines 2000]

A script of N lines (one long macro, then many small macros, blocks and commands) is
1. run as `sched FILE`: the peer, the cost of the script itself;
2. pasted into the prompt of `sched` on a pty as a terminal pastes it (bracketed paste: the
   text arrives between ESC[200~ and ESC[201~ and is run with one Enter);
3. pasted into the prompt as raw keystrokes (a terminal without bracketed paste, or text
   typed by another program): every line ends with Enter, so each complete command runs as
   it arrives and Enter inside a block inserts a newline.
Each row gives the wall time from sending the first byte to the script's last output, the CPU
time of the sched process meanwhile (which a busy machine does not inflate), and the process's
peak resident memory (VmHWM; for `sched FILE` the child's ru_maxrss). Target: the
pastes take under 2 s at 2,000 lines and no more memory than running the file.
Prints a table; nothing is asserted (that is the tests' job).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pexpect

VENV_SCHED = Path(sys.executable).with_name("sched")
SCHED = [str(VENV_SCHED)] if VENV_SCHED.exists() else [sys.executable, "-m", "psched.shell.cli"]
DONE = "paste-finished"


def script(lines: int) -> str:
    """An ordinary script of about `lines` lines: a long macro, then small blocks and commands."""
    out = ["# pasted from an editor", "set total 0", "macro long n"]
    body = max(lines // 2 - 4, 4)
    for i in range(0, body - 4, 5):
        out += [f"  if {{$n > {i}}}", f"    set r{i} [expr {{$n * {i}}}]", "  else",
                f"    set r{i} {i}", "  end"]
    out.append("end")
    i = 0
    while len(out) < lines - 2:
        out += [f"macro m{i} a b", "  if {$a > $b}", "    set r [expr {$a - $b}]", "  else",
                "    set r [expr {$b - $a}]", "  end", "  foreach x [list 1 2 3]", "    incr ::total $x",
                "  end", "end", f"m{i} {i} 3"]
        i += 1
    out += ["long 7", f"echo [set w paste]-finished-$total"]
    return "\n".join(out) + "\n"


def vm_peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_file(path: Path, env: dict) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(SCHED + [str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert DONE.encode() in out, out[-2000:]
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, 0, usage.ru_maxrss


def paste(text: str, env: dict, bracketed: bool, timeout: float) -> tuple[float, float, int, int]:
    child = pexpect.spawn(SCHED[0], SCHED[1:], env=env, encoding="utf-8", timeout=timeout,
                          dimensions=(40, 200), maxread=65536)
    child.delaybeforesend = None  # pexpect waits 50 ms before each send by default
    try:
        child.expect_exact("sched>")
        if bracketed:
            keys = "\x1b[200~" + text + "\x1b[201~\r"
        else:
            keys = text.replace("\n", "\r")
        idle = vm_peak_kib(child.pid)
        t0, cpu0 = time.perf_counter(), cpu_seconds(child.pid)
        # A writer thread: the pty's buffers are small, and the shell echoes what it reads, so
        # reading and writing must go on at once.
        writer = threading.Thread(target=lambda: [child.send(keys[i:i + 1024]) for i in range(0, len(keys), 1024)])
        writer.start()
        child.expect_exact(DONE)
        elapsed = time.perf_counter() - t0
        writer.join()
        peak, cpu = vm_peak_kib(child.pid), cpu_seconds(child.pid) - cpu0
        child.sendline("quit -force")
        child.expect(pexpect.EOF)
        return elapsed, cpu, idle, peak
    finally:
        if child.isalive():
            child.terminate(force=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    text = script(args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pasted.sched"
        path.write_text(text)
        env = dict(os.environ, SCHED_HOME=str(Path(tmp) / "home"), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
        rows = [("sched FILE (peer)",) + run_file(path, env),
                ("paste into the prompt (bracketed paste)",) + paste(text, env, True, args.timeout),
                ("paste into the prompt (raw keystrokes)",) + paste(text, env, False, args.timeout)]
    print(f"\npasting a script of {text.count(chr(10))} lines into `sched` on a pty (target: < 2 s, memory as the file)")
    print("(wall: first byte sent to the last output; CPU: the sched process's own, which a busy machine")
    print(" does not inflate; for the paste rows the start-up before the prompt is not counted;")
    print(" peak RSS: of the whole run; 'at the prompt': before the paste, the prompt's own cost)")
    print(f"{'how':<42} {'wall s':>8} {'CPU s':>8} {'at the prompt MiB':>18} {'peak RSS MiB':>13}")
    for name, secs, cpu, idle, kib in rows:
        before = f"{idle / 1024:.1f}" if idle else "-"
        print(f"{name:<42} {secs:>8.2f} {cpu:>8.2f} {before:>18} {kib / 1024:>13.1f}")


if __name__ == "__main__":
    main()
