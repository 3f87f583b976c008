"""The interactive shell on a real pty (pexpect): history, blocks, Ctrl-C, errors, leaving.

What we expect to see is always output that differs from what was typed (`echo ${w}ted`
prints "started", which the echo of the typed line does not contain), because the terminal
shows the typed text too.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pexpect
import pytest

import psched  # noqa: F401
from psched.lang.interp import Interp
from psched_test_command import SCHED_COMMAND

pytestmark = pytest.mark.timeout(60)


def test_history_persists_across_sessions(terminal, sched_env, tmp_path):
    term = terminal()
    term.prompt()
    term.line("set w hist; echo ${w}ory-one")
    term.expect("history-one")
    term.prompt()
    term.send("\x04")  # Ctrl-D leaves
    assert term.expect_exit() == 0
    assert "echo ${w}ory-one" in (tmp_path / "home" / "history").read_text()

    again = terminal()
    again.prompt()
    again.send("\x1b[A")  # up-arrow recalls the last command of the previous session
    again.send("\r")
    again.expect("history-one")
    again.prompt()
    again.line("quit 4")
    assert again.expect_exit() == 4


def test_multi_line_block_entry(terminal):
    term = terminal()
    term.prompt()
    term.line("macro m")
    term.expect("macro>")  # the continuation prompt says what is open
    term.line("  if {$1 ne {}}")
    term.expect("if>")
    term.line("    echo in-$1")
    term.line("  end")
    term.line("end")
    term.prompt()
    term.line("m [set w mac]ro")
    term.expect("in-macro")
    term.prompt()
    term.line("set x {ab")
    term.expect("{>")
    term.line("cd}; string toupper $x")
    term.expect("AB\r\nCD")  # a result at the prompt is printed
    term.prompt()
    term.send("\x04")
    assert term.expect_exit() == 0


def test_ctrl_c_cancels_the_line(terminal):
    term = terminal()
    term.prompt()
    term.send("set flag canceled")
    term.send("\x03")
    term.line("set flag")
    term.expect('can\'t read "flag": no such variable')
    term.prompt()
    term.line("macro half")  # cancels a half-typed block too
    term.expect("macro>")
    term.send("\x03")
    term.line("echo [set w ali]ve")
    term.expect("alive")
    term.prompt()


def test_ctrl_c_interrupts_a_running_command(terminal):
    term = terminal()
    term.prompt()
    term.line("set i 0; set w star; echo ${w}ted; while 1 {incr i}")
    term.expect("started")  # the loop runs: the terminal is back in cooked mode, Ctrl-C is SIGINT
    term.send("\x03")
    term.expect("interrupted")
    term.prompt()
    term.line("echo [set w ali]ve")
    term.expect("alive")
    term.prompt()


def test_ctrl_c_interrupts_an_empty_loop(terminal):
    term = terminal()
    term.prompt()
    term.line("set w star; echo ${w}ted; while 1 {}")
    term.expect("started")
    term.send("\x03")
    term.child.timeout = 3
    term.expect("interrupted")


def test_ctrl_c_interrupts_a_backtracking_regexp(terminal):
    """A pattern that backtracks for ages (2**60 ways to split the a's) stops at Ctrl-C, at
    once: the match itself checks for signals (psched.lang.tclregex); the prompt comes back."""
    term = terminal()
    term.prompt()
    term.line("set w star; echo ${w}ted; regexp {(a|aa)+$} [string repeat a 60]b")
    term.expect("started")
    started = time.monotonic()
    term.send("\x03")
    term.child.timeout = 5
    term.expect("interrupted")
    assert time.monotonic() - started < 5
    term.prompt()
    term.line("echo [set w ali]ve")
    term.expect("alive")


@pytest.mark.skipif("exec" not in Interp().commands, reason="no exec command")
def test_ctrl_c_reaches_a_child_program(terminal):
    term = terminal()
    term.prompt()
    term.line("set w star; echo ${w}ted; exec sleep 30")
    term.expect("started")
    began = time.monotonic()
    term.send("\x03")
    term.prompt()
    assert time.monotonic() - began < 10
    term.line("echo [set w ali]ve")
    term.expect("alive")


def test_an_error_then_a_working_command(terminal):
    term = terminal()
    term.prompt()
    term.line("nosuch 1")
    term.expect('<input>:1:1: invalid command name "nosuch"')
    term.prompt()
    term.line("echo a]")  # cannot parse: the validator says why and keeps the line
    term.expect("unmatched")
    term.send("\x03")
    term.line("echo [set w wor]ks")
    term.expect("works")
    term.prompt()
    term.line("exit")
    assert term.expect_exit() == 0


def test_tab_completion(terminal):
    term = terminal()
    term.prompt()
    term.line("set longvariablename ok")
    term.prompt()
    term.send("ech\t")
    term.send(" ${longvar\t")
    term.send("}ay\r")
    term.expect("okay")
    term.prompt()


def test_files_then_the_prompt(terminal, tmp_path):
    (tmp_path / "lib.sched").write_text("macro greet\n  echo hello-$1\nend\n")
    term = terminal("lib.sched")
    term.prompt()
    term.line("greet [set w wor]ld")
    term.expect("hello-world")
    term.prompt()
    term.send("\x04")
    assert term.expect_exit() == 0


_SCHEDULER = {"task", "run", "kill", "wait"} <= set(Interp().commands)


@pytest.mark.skipif(not _SCHEDULER, reason="no scheduler commands")
def test_background_messages_appear_above_the_prompt(terminal):
    term = terminal()
    term.prompt()
    term.line("task t\r  host LOCAL\r  command sleep 0.3\r  nmax 1\r  task.exit 0\r"
              "    echo [set w fin]ished-$task\r  end\rend")
    term.prompt()
    term.line("run")
    term.prompt()
    term.send("echo typ")  # the job ends while this line is being typed
    term.expect("finished-t")
    term.send("ed\r")  # ...and the half-typed line survived the message
    term.expect("typed")
    term.prompt()


@pytest.mark.skipif(not _SCHEDULER, reason="no scheduler commands")
def test_leaving_with_jobs_out_asks_first(terminal):
    term = terminal()
    term.prompt()
    term.line("task t\r  host LOCAL\r  command sleep 30\r  nmax 1\rend")
    term.prompt()
    term.line("run")
    term.prompt()
    term.send("\x04")
    term.expect("still out")
    term.expect("really quit? [y/N]")
    term.line("n")
    term.prompt()
    term.line("quit")
    term.expect("really quit? [y/N]")
    term.line("")  # no answer is no
    term.prompt()
    term.line("kill 1; wait -timeout 10; echo [set w gon]e")
    term.expect("gone")
    term.prompt()
    term.send("\x04")  # nothing out any more: leaves without asking
    assert term.expect_exit() == 0


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _long_script(lines: int) -> str:
    out = ["macro long n"] + [f"  if {{$n > {i}}}\n    set r{i} [expr {{$n * {i}}}]\n  end" for i in range(lines // 6)] + ["end"]
    i = 0
    while sum(part.count("\n") + 1 for part in out) < lines - 2:
        out.append(f"macro m{i} a\n  foreach x [list 1 2 $a]\n    incr ::total $x\n  end\nend\nm{i} {i}")
        i += 1
    return "\n".join(["set total 0"] + out + ["long 7", "echo [set w pas]ted-$total"]) + "\n"


def _send_while_reading(term, keys: str) -> threading.Thread:
    """Write `keys` from a thread: the shell echoes what it reads, so reading must go on meanwhile."""
    term.child.delaybeforesend = None
    writer = threading.Thread(target=lambda: [term.child.send(keys[i:i + 1024]) for i in range(0, len(keys), 1024)])
    writer.start()
    return writer


def test_pasting_2000_lines_is_quick(terminal):
    text = _long_script(2000)
    assert text.count("\n") >= 2000
    term = terminal()
    term.prompt()
    cpu0 = _cpu_seconds(term.child.pid)
    writer = _send_while_reading(term, "\x1b[200~" + text + "\x1b[201~\r")  # a terminal's bracketed paste
    term.child.timeout = 60
    term.expect("pasted-")
    writer.join()
    used = _cpu_seconds(term.child.pid) - cpu0
    term.prompt()
    term.line("echo [set w ali]ve-$total")
    term.expect("alive-")
    assert used < 2.0, f"the paste took {used:.2f} s of CPU"


def test_pasted_lines_keep_their_indentation(terminal, tmp_path):
    term = terminal()
    term.prompt()
    block = "macro m\r  if 1\r    foreach x {a b}\r      echo $x\r    end\r  end\rend\r"
    writer = _send_while_reading(term, block + "m; echo [set w don]e\r")  # keys at once, no bracketed paste
    term.expect("done")
    writer.join()
    term.prompt()
    term.line("quit")
    assert term.expect_exit() == 0
    history = (tmp_path / "home" / "history").read_text()
    assert "+macro m\n+  if 1\n+    foreach x {a b}\n+      echo $x\n+    end\n+  end\n+end\n" in history


@pytest.mark.parametrize("command", [
    "string map {a bb} [string repeat a 10000000]",  # one command computing for seconds
    "expr {[string length [string map {a bb} [string repeat a 10000000]]] > 0}",  # ... inside an expression
    "lsort -integer [lrepeat 1000000 3 1 2]",
], ids=["string-map", "expr", "lsort"])
def test_ctrl_c_interrupts_a_long_command(terminal, command):
    term = terminal()
    term.prompt()
    term.line(f"set w star; echo ${{w}}ted; {command}")
    term.expect("started")
    began = time.monotonic()
    term.send("\x03")
    term.child.timeout = 20
    term.expect("interrupted")
    term.prompt()
    assert time.monotonic() - began < 8  # the commands run for 20 s and more
    term.line("echo [set w ali]ve")
    term.expect("alive")


def test_sigint_ends_a_script_that_computes(sched_env, tmp_path):
    script = tmp_path / "long.sched"
    script.write_text("puts [set w star]ted\nstring map {a bb} [string repeat a 10000000]\nputs never\n")
    child = pexpect.spawn(SCHED_COMMAND[0], SCHED_COMMAND[1:] + [str(script)], env=sched_env, encoding="utf-8", timeout=20)
    try:
        child.expect_exact("started")
        child.kill(signal.SIGINT)
        child.expect(pexpect.EOF, timeout=8)  # the command runs for 20 s and more
        child.close()
        assert "interrupted" in child.before
        assert "Traceback" not in child.before and "never" not in child.before
        assert child.exitstatus != 0
    finally:
        if child.isalive():
            child.terminate(force=True)
