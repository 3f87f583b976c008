"""The interactive shell on a real pty (pexpect): history, blocks, Ctrl-C, errors, leaving.

What we expect to see is always output that differs from what was typed (`echo ${w}ted`
prints "started", which the echo of the typed line does not contain), because the terminal
shows the typed text too.
"""

from __future__ import annotations

import time

import pytest

import psched  # noqa: F401
from psched.lang.interp import Interp

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
