"""The shell's pieces in-process: continuation, validation, Enter, leaving and interrupting."""

from __future__ import annotations

import asyncio
import io
import signal
import sys

import pytest
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.validation import ValidationError

import psched  # noqa: F401
from psched.shell.session import (InterruptHandler, QuitRequest, add_exit_hook, add_quit_check, needs_more, quit_vetoes,
                            run_exit_hooks)
from psched.lang.errors import ScriptError
from psched.lang.interp import Interp
from psched.scheduler import eventloop
from psched.shell.repl import InputValidator, Shell, confirm_leave, continuation_label

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def interp() -> Interp:
    return Interp(stdout=io.StringIO())


@pytest.fixture(autouse=True)
def own_loop():
    """Each test prompts on a loop of its own, not the one earlier tests in this worker used.

    A reader left on that loop for a file descriptor since closed makes a new pipe that reuses
    the number look registered to asyncio while epoll no longer watches it: the prompt's keys
    would never arrive (seen once in a full run: the prompt waited out the test's timeout)."""
    left = eventloop._loop
    eventloop._loop = None
    try:
        yield
    finally:
        mine = eventloop._loop
        if mine is not None and not mine.is_closed():
            pending = asyncio.all_tasks(mine)  # prompt_toolkit's redraws scheduled as it ended
            for task in pending:
                task.cancel()
            mine.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            mine.close()
        eventloop._loop = left
        if left is not None:
            asyncio.set_event_loop(left)


# --- what is open --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, label", [
    ("echo hi", "."),
    ("macro m", "macro"),
    ("task fetch", "task"),
    ("task fetch\n  task.exec", "task.exec"),
    ("if $x > 1", "if"),
    ("if $x > 1\n  echo a\nelse", "if"),
    ("foreach v {1 2} {", "{"),
    ("set x [list a", "["),
    ('echo "abc', '"'),
    ("echo a \\", "\\"),
    ("macro m\n  set x {", "{"),  # the innermost construct is the one shown
    ("macro m\nend", "."),
])
def test_continuation_label(text, label):
    assert continuation_label(text) == label


@pytest.mark.parametrize("text, still_open", [
    ("echo a\n", None),
    ("echo a \\\n", "\\"),  # a line that ends with a backslash continues
    ("echo a \\\\\n", None),  # an escaped backslash does not
    ("macro m\n", "macro"),
    ("macro m\necho\nend\n", None),
    ("echo ]\n", None),  # a parse error is complete: running it reports the error
])
def test_needs_more(text, still_open):
    found = needs_more(text)
    assert (found.opener if found else None) == still_open


def test_validator_points_at_the_error():
    validator = InputValidator()
    validator.validate(Document("macro m\n  echo {"))  # unfinished is not an error
    validator.validate(Document("echo ok"))
    with pytest.raises(ValidationError) as caught:
        validator.validate(Document("echo ok\necho a]"))
    assert "unmatched" in caught.value.message
    assert caught.value.cursor_position == len("echo ok\necho a")


# --- Enter, Ctrl-C and Ctrl-D at a prompt fed by a pipe ----------------------------------------------


def _shell(interp: Interp, pipe) -> Shell:
    return Shell(interp, InterruptHandler(interp, idle_raises=False), history=InMemoryHistory(),
                 input=pipe, output=DummyOutput())


def _typed(shell: Shell, pipe, keys: str) -> str:
    """Read one input typed a key at a time: each key is sent once the one before has been
    handled, so no key waits while another is (as when a person types). Paced by the key
    processor, not by the screen: a redraw that prompt_toolkit folds into a later one would
    otherwise leave the next key unsent."""
    waiting = list(keys)

    def next_key(_processor=None) -> None:
        if waiting:
            pipe.send_text(waiting.pop(0))

    processor = shell.session.app.key_processor
    processor.after_key_press += next_key
    try:
        next_key()
        return shell.read()
    finally:
        processor.after_key_press -= next_key


def test_enter_continues_while_a_block_is_open(interp):
    with create_pipe_input() as pipe:
        shell = _shell(interp, pipe)
        # inside a block, Enter keeps the indentation; inside braces it adds none
        assert _typed(shell, pipe, "macro m\r  echo {a\rb}\recho c\rend\r") == "macro m\n  echo {a\nb}\necho c\nend"
        assert _typed(shell, pipe, "macro m\r  echo a\r\x08\x08end\r") == "macro m\n  echo a\nend"
        assert _typed(shell, pipe, "echo one\r") == "echo one"


def test_pasted_lines_keep_their_own_indentation(interp):
    with create_pipe_input() as pipe:
        shell = _shell(interp, pipe)
        # all keys at once, as a terminal without bracketed paste sends a paste
        pipe.send_text("macro m\r  if 1\r    echo a\r  end\rend\r")
        assert shell.read() == "macro m\n  if 1\n    echo a\n  end\nend"
        # a bracketed paste lands as it is, and Enter then runs it
        pipe.send_text("\x1b[200~macro m\n  if 1\n    echo a\n  end\nend\x1b[201~\r")
        assert shell.read() == "macro m\n  if 1\n    echo a\n  end\nend"


def test_escape_enter_runs_unfinished_input(interp):
    with create_pipe_input() as pipe:
        shell = _shell(interp, pipe)
        pipe.send_text("echo {a\x1b\r")
        assert shell.read() == "echo {a"


def test_ctrl_c_cancels_and_ctrl_d_ends_input(interp):
    with create_pipe_input() as pipe:
        shell = _shell(interp, pipe)
        pipe.send_text("echo half\x03")
        with pytest.raises(KeyboardInterrupt):
            shell.read()
        pipe.send_text("\x04")
        with pytest.raises(EOFError):
            shell.read()


def test_shell_run_loop(interp, capsys):
    with create_pipe_input() as pipe:
        shell = _shell(interp, pipe)
        pipe.send_text("set x 41\rnosuch\rincr x\r\x04")
        assert shell.run() == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["41", "42"]  # results at the prompt are printed
    assert '<input>:1:1: invalid command name "nosuch"' in err
    assert interp.interactive is False


# --- printing results and errors ---------------------------------------------------------------------


def test_execute_prints_results_and_errors(interp, capsys):
    shell = Shell(interp, InterruptHandler(interp, idle_raises=False), history=InMemoryHistory(),
                  output=DummyOutput())
    assert shell.execute("set x 5") is None
    assert shell.execute("set y {}") is None
    assert shell.execute("   ") is None
    assert shell.execute("set x\nnosuch 1") is None
    out, err = capsys.readouterr()
    assert out == "5\n"
    assert err.splitlines() == ['<input>:2:1: invalid command name "nosuch"', "    nosuch 1", "    ^"]


# --- leaving -----------------------------------------------------------------------------------------


def test_quit_raises_quit_request(interp):
    with pytest.raises(QuitRequest) as caught:
        interp.eval("quit 3")
    assert caught.value.status == 3 and not caught.value.force
    with pytest.raises(QuitRequest) as caught:
        interp.eval("catch {exit -force}")  # catch does not keep it
    assert caught.value.status == 0 and caught.value.force


@pytest.mark.parametrize("script, message", [
    ("quit a", 'expected an integer exit status but got "a"'),
    ("quit 1 2", 'wrong # args: should be "quit ?-force? ?status?"'),
    ("quit 1 2 3", 'wrong # args: should be "quit ?-force? ?status?"'),
])
def test_quit_bad_arguments(interp, script, message):
    with pytest.raises(ScriptError) as caught:
        interp.eval(script)
    assert caught.value.message == message


def test_quit_checks_refuse_in_a_script(interp):
    add_quit_check(interp, lambda i: None)
    add_quit_check(interp, lambda i: "2 jobs are still out")
    with pytest.raises(ScriptError) as caught:
        interp.eval("quit")
    assert "2 jobs are still out" in caught.value.message and "quit -force" in caught.value.message
    with pytest.raises(QuitRequest):
        interp.eval("quit -force")


def test_a_broken_quit_check_does_not_trap_the_user(interp):
    def broken(i):
        raise RuntimeError("bug")

    add_quit_check(interp, broken)
    assert quit_vetoes(interp) == []


def test_confirm_leave_asks_only_when_a_check_objects(interp):
    questions: list[str] = []

    def ask(question: str) -> bool:
        questions.append(question)
        return False

    assert confirm_leave(interp, False, ask) is True
    add_quit_check(interp, lambda i: "1 job is still out")
    assert confirm_leave(interp, True, ask) is True
    assert questions == []
    assert confirm_leave(interp, False, ask) is False
    assert questions == ["1 job is still out: really quit?"]


def test_quit_at_the_prompt_asks(interp):
    shell = Shell(interp, InterruptHandler(interp, idle_raises=False), history=InMemoryHistory(),
                  output=DummyOutput())
    answers = [False, True]
    shell.ask = lambda question: answers.pop(0)  # type: ignore[method-assign]
    add_quit_check(interp, lambda i: "jobs out")
    interp.interactive = True
    assert shell.execute("quit 5") is None  # the user said no
    assert shell.execute("quit 5") == 5  # ...and then yes
    assert shell.execute("quit -force 6") == 6
    assert answers == []


# --- interrupting ------------------------------------------------------------------------------------


def test_interrupt_handler(interp):
    handler = InterruptHandler(interp, idle_raises=False)
    handler(signal.SIGINT, None)  # idle at the prompt: ignored
    assert interp.interrupted is False
    previous = signal.getsignal(signal.SIGINT)
    with handler.running():
        assert signal.getsignal(signal.SIGINT) is handler
        handler(signal.SIGINT, None)
        assert interp.interrupted is True
        with pytest.raises(ScriptError, match="interrupted"):
            interp.eval("set a 1")  # the next command stops
        handler(signal.SIGINT, None)
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C before the first was noticed
            handler(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) is previous
    assert interp.interrupted is False  # nothing carries over to the next command
    with pytest.raises(KeyboardInterrupt):
        InterruptHandler(interp, idle_raises=True)(signal.SIGINT, None)


def test_exit_hooks_run_once_however_sched_leaves(monkeypatch, capsys):
    import psched.shell.cli as cli

    calls: list[object] = []
    monkeypatch.setattr(cli, "run_exit_hooks", lambda interp: calls.append(interp))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli.main(["-c", "nosuch"]) == 1
    assert cli.main(["-c", "quit 2"]) == 2
    assert len(calls) == 2 and all(isinstance(c, Interp) for c in calls)


def test_run_exit_hooks_survives_a_failing_hook(interp):
    ran: list[str] = []

    def broken(i):
        raise RuntimeError("bug")

    add_exit_hook(interp, broken)
    add_exit_hook(interp, lambda i: ran.append("second"))
    run_exit_hooks(interp)
    assert ran == ["second"]
