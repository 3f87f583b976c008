"""`exec` (psched.lang.commands.exec): pipelines and redirections without a shell, exit statuses,
signals, stderr, and Ctrl-C (interp.interrupted) while a child runs."""

import os
import sys
import threading
import time

import pytest

import psched
from psched.lang.commands.exec import Target, parse_pipeline
from psched.lang.errors import SchedError

SH = "/bin/sh"
pytestmark = pytest.mark.skipif(not os.path.exists(SH), reason="needs /bin/sh")


@pytest.fixture
def interp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return psched.Interp()


CASES = [
    ("exec echo hi", "hi"),
    ("exec -keepnewline echo hi", "hi\n"),
    ('exec printf "a\\n\\n"', "a\n"),  # only one newline goes
    ("exec -- echo -foo", "-foo"),
    ("exec echo hello | tr a-z A-Z", "HELLO"),
    ('exec printf "b\\na\\n" | sort | tr a-z A-Z', "A\nB"),
    ("exec yes | head -2", "y\ny"),  # yes dies of SIGPIPE: not an error
    ('exec cat << "hello there"', "hello there"),
    ('exec cat "<<two words"', "two words"),
    ('exec sh -c "echo e >&2" 2>@1', "e"),
    ('exec sh -c "echo e >&2" |& tr a-z A-Z', "E"),
    ('exec -ignorestderr sh -c "echo out; echo err >&2"', "out"),
    ("exec echo a > f.txt; exec echo b >> f.txt; exec cat < f.txt", "a\nb"),
    ("exec echo a >f.txt; exec cat <f.txt", "a"),
    ('exec sh -c "echo e >&2" 2> e.txt; exec cat e.txt', "e"),
    ('exec sh -c "echo e >&2" 2> e.txt; exec sh -c "echo f >&2" 2>> e.txt; exec cat e.txt', "e\nf"),
    ('exec sh -c "echo o; echo e >&2" >& both.txt; exec sort both.txt', "e\no"),
    ("exec cat", ""),  # stdin is /dev/null, not the shell's
    ("catch {exec false} msg; set msg", "child process exited abnormally"),
    ("catch {exec sh -c {echo o; exit 3}} msg opts; set e [dict get $opts -errorcode]; list $msg [lindex $e 0] [lindex $e 2]",
     "{o\nchild process exited abnormally} CHILDSTATUS 3"),
    ("exec echo {a b} {$x} {[y]}", "a b $x [y]"),  # words go to the program as they are
]


@pytest.mark.parametrize("script,expected", CASES)
def test_exec(interp, script, expected):
    assert interp.eval(script) == expected


ERRORS = [
    ('exec sh -c "echo err >&2"', "err"),
    ('exec sh -c "echo out; echo err >&2; exit 3"', "out\nerr"),
    ("exec sh -c {exit 2} | cat", "child process exited abnormally"),
    ('exec sh -c "kill -SEGV \\$\\$"', "child killed: segmentation violation"),
    ("exec nosuchprogram-xyz", 'couldn\'t execute "nosuchprogram-xyz": no such file or directory'),
    ("exec echo x | nosuchprogram-xyz", 'couldn\'t execute "nosuchprogram-xyz": no such file or directory'),
    ("exec ./", 'couldn\'t execute "./": permission denied'),
    ("exec echo x |", "illegal use of | or |& in command"),
    ("exec | echo", "illegal use of | or |& in command"),
    ("exec echo >", 'can\'t specify ">" as last word in command'),
    ("exec cat < nonexistent.txt", 'couldn\'t read file "nonexistent.txt": no such file or directory'),
    ("exec echo hi > no/such/dir/x", 'couldn\'t write file "no/such/dir/x": no such file or directory'),
    ("exec echo a &", "background pipelines"),
    ("exec -foo echo", 'bad option "-foo": must be -ignorestderr, -keepnewline, or --'),
    ("exec -keepnewline", "wrong # args"),
    ("exec echo >@ file", 'can only write to channels "stdout" or "stderr"'),
]


@pytest.mark.parametrize("script,message", ERRORS)
def test_exec_errors(interp, script, message):
    with pytest.raises(SchedError) as info:
        interp.eval(script)
    assert info.value.message.startswith(message) or message in info.value.message


def test_parse_pipeline():
    pipe = parse_pipeline(["a", "x", "|", "b", ">>out", "2>@1", "<", "in", "|&", "c"])
    assert pipe.stages == [["a", "x"], ["b"], ["c"]]
    assert pipe.stdout.target is Target.FILE and pipe.stdout.path == "out" and pipe.stdout.append
    assert pipe.stdin.target is Target.FILE and pipe.stdin.path == "in"
    assert pipe.stderr.target is Target.STDOUT
    assert pipe.stderr_piped == [False, True, False]


def test_no_shell_is_involved(interp, tmp_path):
    # `;` and `$(...)` are plain argument text: nothing runs them.
    assert interp.eval('exec echo "a; touch pwned" {$(touch pwned2)}') == "a; touch pwned $(touch pwned2)"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_binary_output_does_not_crash(interp):
    assert interp.eval("exec printf {\\377\\376}") == "\xff\xfe"  # (as tclsh: Latin-1 for bytes no UTF-8 has)


def test_interrupt_stops_the_child(interp, tmp_path):
    """Ctrl-C sets interp.interrupted; exec ends the child and raises "interrupted"."""
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)

    def interrupt_when_child_is_ready():
        with open(fifo) as fh:  # blocks until the child has opened and written it
            fh.read()
        interp.interrupt()

    helper = threading.Thread(target=interrupt_when_child_is_ready, daemon=True)
    helper.start()
    started = time.monotonic()
    with pytest.raises(SchedError) as info:
        interp.eval(f'exec sh -c "echo ready > {fifo}; exec sleep 30"')
    assert info.value.message == "interrupted"
    assert time.monotonic() - started < 10
    assert interp.interrupted is False  # consumed: the next command runs
    assert interp.eval("exec echo next") == "next"
    helper.join(timeout=5)


def test_python_child_and_large_output(interp):
    script = f'exec {sys.executable} -c "print(\'x\' * 200000)"'
    assert len(interp.eval(script)) == 200000


def test_pid_is_this_process_and_a_child_sees_it_as_its_parent(interp):
    assert interp.eval("pid") == str(os.getpid())
    assert interp.eval('exec sh -c {echo $PPID}') == str(os.getpid())
    with pytest.raises(SchedError, match='wrong # args: should be "pid"'):
        interp.eval("pid stdout")
