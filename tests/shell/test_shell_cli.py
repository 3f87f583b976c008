"""The `sched` command: -c, files, stdin as a script, errors and exit statuses.

Most cases call psched.shell.cli.main in this process (starting Python costs more than the test);
a few run the real program through a pipe, as a user would.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from pexpect.popen_spawn import PopenSpawn

from psched_test_command import SCHED_COMMAND
from psched.shell.cli import main

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sched(monkeypatch, capsys, tmp_path):
    """Run `sched ARGS` in this process with `stdin` piped in; returns (status, stdout, stderr)."""
    monkeypatch.setenv("SCHED_HOME", str(tmp_path / "home"))

    def run(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            status = main(list(args))
        except SystemExit as leaving:  # argparse: --version, -h
            status = leaving.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), status, out, err)

    return run


def test_dash_c_runs_a_script_and_prints_no_results(sched):
    done = sched("-c", "set x 5; echo hi; expr {$x * 2}")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "")


def test_files_run_in_order_then_stdin(sched, tmp_path):
    (tmp_path / "one.sched").write_text("set greeting hello\nmacro greet\n  echo $greeting $1\nend\n")
    (tmp_path / "two.sched").write_text("greet world\n")
    done = sched("one.sched", "two.sched", stdin="greet again\n", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello world\nhello again\n", "")


def test_stdin_is_a_script(sched):
    script = """\
echo hi
set n 0
foreach v {a b c} {
    incr n
}
macro show
  echo n=$n \\
    and more
end
show
if {$n == 3} {echo three} else {echo other}
"""
    done = sched(stdin=script)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\nn=3 and more\nthree\n", "")


def test_a_failing_file_stops_with_its_position(sched, tmp_path):
    (tmp_path / "bad.sched").write_text("echo before\nset x [nosuch 1]\necho after\n")
    (tmp_path / "later.sched").write_text("echo later\n")
    done = sched("bad.sched", "later.sched", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == "before\n"
    assert done.stderr.splitlines()[:3] == ['bad.sched:2:8: invalid command name "nosuch"',
                                            "    set x [nosuch 1]",
                                            "           ^"]


def test_stdin_errors_count_lines_from_the_first(sched):
    done = sched(stdin="echo one\n\nmacro m\n  echo x\nend\n  nosuch\necho never\n")
    assert done.returncode == 1
    assert done.stdout == "one\n"
    assert done.stderr.startswith('<stdin>:6:3: invalid command name "nosuch"\n      nosuch\n      ^')


@pytest.mark.parametrize("args, stdin, message", [
    (["-c", "echo {abc"], "", "-c:1:6: missing close-brace"),
    ([], "echo ok\nmacro m\n  echo x\n", "<stdin>:2:1: missing `end` for `macro` opened at line 2"),
    ([], "echo ]\n", "<stdin>:1:6: unmatched `]`"),
])
def test_parse_errors_fail(sched, args, stdin, message):
    done = sched(*args, stdin=stdin)
    assert done.returncode == 1
    assert done.stderr.startswith(message), done.stderr


@pytest.mark.parametrize("args, stdin, status, out", [
    (["-c", "echo a; quit 3; echo b"], "", 3, "a\n"),
    (["-c", "exit"], "", 0, ""),
    ([], "echo a\nquit 4\necho b\n", 4, "a\n"),
    (["-c", "catch {quit 5}; echo b"], "", 5, ""),
])
def test_quit_leaves_with_its_status(sched, args, stdin, status, out):
    done = sched(*args, stdin=stdin)
    assert (done.returncode, done.stdout) == (status, out)


def test_version_and_help(sched):
    done = sched("--version")
    assert done.returncode == 0 and done.stdout.startswith("sched ")
    done = sched("-h")
    assert done.returncode == 0 and "-c SCRIPT" in done.stdout and "FILE" in done.stdout


PLAIN_LINES = [[], ["-c", "echo hi"], ["a.sched"], ["a.sched", "b.sched", "-c", "puts x"], ["-c", ""], ["-c", "x y"]]
OTHER_LINES = [["-c", "x", "-c", "y"], ["-c"], ["a", "-c"], ["-c", "-1"], ["-c", "x", "a"], ["--", "-c", "x"], ["-"],
               ["-cx"], ["--name", "n", "-c", "x"], ["-c", "x", "-h"], ["a.sched", "--version"]]


def test_the_plain_command_line_is_read_as_argparse_reads_it():
    """`sched [FILE...] [-c SCRIPT]` is read without argparse (start-up); every other command
    line goes to psched.shell.options, and the two agree wherever the plain reading applies."""
    from psched.shell.cli import PLAIN_DEFAULTS, _plain_options
    from psched.shell.options import argument_parser

    assert vars(argument_parser().parse_args([])) == PLAIN_DEFAULTS
    for argv in PLAIN_LINES:
        assert vars(_plain_options(argv)) == vars(argument_parser().parse_args(argv)), argv
    assert [argv for argv in OTHER_LINES if _plain_options(argv) is not None] == []


def test_the_installed_program(sched_env, tmp_path):
    (tmp_path / "lib.sched").write_text("macro greet\n  echo hello $1\nend\n")
    done = subprocess.run(SCHED_COMMAND + ["lib.sched", "-c", "greet [set w wor]ld; set x 1"], capture_output=True,
                          text=True, env=sched_env, cwd=tmp_path, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello world\n", "")
    done = subprocess.run(SCHED_COMMAND, input="echo hi\nquit 7\n", capture_output=True, text=True,
                          env=sched_env, timeout=30)
    assert (done.returncode, done.stdout) == (7, "hi\n")
    done = subprocess.run(SCHED_COMMAND + ["-c", "echo a\n  nosuch"], capture_output=True, text=True,
                          env=sched_env, timeout=30)
    assert done.returncode == 1
    assert done.stderr.splitlines()[:3] == ['-c:2:3: invalid command name "nosuch"', "      nosuch", "      ^"]


def test_script_bytes_are_read_as_tclsh_reads_them(sched_env, tmp_path):
    """A file's UTF-8 byte order mark is dropped, and a byte that is not UTF-8 is its Latin-1
    character, in a file and on stdin (also under a strict locale, where reading used to stop
    at it and the rest of the script was skipped with status 0). tclsh 8.6 is the oracle."""
    script = b"\xef\xbb\xbfputs bom\nputs \"caf\xe9 \xc3\xa9\"\nsource inner.sched\nputs end\n"
    (tmp_path / "outer.sched").write_bytes(script)
    (tmp_path / "inner.sched").write_bytes(b"\xef\xbb\xbfputs inner\xff\n")
    expected = "bom\ncaf\u00e9 \u00e9\ninner\u00ff\nend\n".encode()
    done = subprocess.run(SCHED_COMMAND + ["outer.sched"], capture_output=True, env=sched_env, cwd=tmp_path,
                          timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, b"")
    strict = dict(sched_env, PYTHONIOENCODING="utf-8:strict")
    done = subprocess.run(SCHED_COMMAND, input=script[3:], capture_output=True, env=strict, cwd=tmp_path,
                          timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, b"")
    tclsh = shutil.which("tclsh")
    if tclsh is not None:  # (the oracle, where installed: scripts/setup installs it)
        (tmp_path / "outer.tcl").write_bytes(script.replace(b"inner.sched", b"inner.tcl"))
        (tmp_path / "inner.tcl").write_bytes((tmp_path / "inner.sched").read_bytes())
        done = subprocess.run([tclsh, "outer.tcl"], capture_output=True, cwd=tmp_path, timeout=30)
        assert done.stdout == expected


@pytest.mark.parametrize("closed", ["<&-", ">&-", "<&- >&- 2>&-", "0>/dev/null"])  # (the last: nohup's stdin)
def test_a_closed_standard_descriptor_neither_hangs_nor_fails(sched_env, tmp_path, closed):
    """`sched FILE <&-` read its closed stdin after the file (as `sched FILE` reads a pipe) and
    hung there for good; with stdout closed each `puts` was an internal error. Now the file
    runs, sched leaves with 0, and `puts` writes nowhere, as tclsh's does."""
    (tmp_path / "job.sched").write_text("task t\n  command true\n  host LOCAL\n  nmax 2\n  task.exit 0\n"
                                        "    puts ran\n  end\nend\nrun\nwait\nputs done\n")
    done = subprocess.run(["sh", "-c", f'exec "$@" {closed}', "sh", *SCHED_COMMAND, "job.sched"], cwd=tmp_path,
                          env=sched_env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr and "stopped" not in done.stderr
    assert done.stdout == ("" if ">&-" in closed else "ran\nran\ndone\n")


def test_a_script_run_in_the_background_of_a_terminal_is_not_stopped_by_it(sched_env, tmp_path):
    """`sched FILE &` in an interactive shell: its stdin is the terminal but it is not in the
    foreground. It opened the prompt after the file, and the terminal stopped it at once
    (SIGTTOU): the scheduler and its jobs froze. Now it goes on as a script and ends."""
    (tmp_path / "bg.sched").write_text("task t\n  command true\n  host LOCAL\n  nmax 2\n  task.exit 0\n"
                                       "    puts ended-$job_id\n  end\nend\nrun\n")
    command = " ".join(shlex.quote(word) for word in SCHED_COMMAND)
    shell = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], cwd=str(tmp_path), env=sched_env,
                          encoding="utf-8", timeout=30)
    try:
        shell.sendline(f"{command} bg.sched & wait $!; echo status=$?")
        shell.expect(r"status=(\d+)")
        assert shell.match.group(1) == "0", shell.before
        assert "ended-1" in shell.before and "ended-2" in shell.before and "Stopped" not in shell.before
    finally:
        shell.close(force=True)


def test_output_into_a_pipe_gets_no_prompt_drawn_into_it(sched_env, tmp_path):
    """`sched FILE | tee log` typed at a terminal: the script's output and then the commands typed
    (read as lines, as from a pipe) go to the pipe, without the prompt's drawing."""
    (tmp_path / "one.sched").write_text("puts from-file\n")
    command = " ".join(shlex.quote(word) for word in SCHED_COMMAND)
    shell = pexpect.spawn("bash", ["--norc", "--noprofile", "-c", f"{command} one.sched | cat -A; echo status=$?"],
                          cwd=str(tmp_path), env=sched_env, encoding="utf-8", timeout=30)
    try:
        shell.expect_exact("from-file$")
        shell.sendline("puts typed")
        shell.expect_exact("typed$")
        shell.sendline("quit")
        shell.expect(r"status=(\d+)")
        assert shell.match.group(1) == "0"
        assert "sched>" not in shell.before
    finally:
        shell.close(force=True)


def test_a_c_script_that_ends_with_the_scheduler_running_goes_on_until_its_work_is_done(sched):
    """`sched -c 'task ...; run'` left at once, its tasks never run and nothing said; a -c
    script is a script: it goes on as a FILE does."""
    done = sched("-c", "task t\n  command true\n  host LOCAL\n  nmax 2\n  task.exit 0\n    puts ran-$job_id\n"
                       "  end\nend\nrun")
    assert (done.returncode, sorted(done.stdout.split())) == (0, ["ran-1", "ran-2"]), done.stderr
    assert "the script has ended with the scheduler running" in done.stderr


def test_missing_file(sched, tmp_path):
    done = sched("nope.sched", cwd=tmp_path)
    assert done.returncode == 1
    assert 'couldn\'t read file "nope.sched"' in done.stderr


def test_a_pipe_runs_each_command_as_soon_as_it_is_complete(sched_env):
    child = PopenSpawn(SCHED_COMMAND, env=sched_env, encoding="utf-8", timeout=15)
    try:
        child.sendline("set w fir; echo ${w}st")
        child.expect_exact("first")
        child.sendline("macro m")
        child.sendline("  echo in-$1")
        child.sendline("end; m [set w sec]ond")
        child.expect_exact("in-second")
        child.sendline("echo [set w thi]rd \\")
        child.sendline("  and more")
        child.expect_exact("third and more")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.kill(signal.SIGKILL) if child.proc.poll() is None else None
    assert child.wait() == 0


def test_ctrl_c_stops_a_piped_script(sched_env):
    child = PopenSpawn(SCHED_COMMAND, env=sched_env, encoding="utf-8", timeout=15)
    try:
        child.sendline("set w star; echo ${w}ted; set i 0; while 1 {incr i}")
        child.expect_exact("started")
        child.kill(signal.SIGINT)
        child.expect_exact("interrupted")  # stderr comes through the same pipe
        child.expect(pexpect.EOF)
    finally:
        child.kill(signal.SIGKILL) if child.proc.poll() is None else None
    assert child.wait() == -signal.SIGINT  # ends by SIGINT, as tclsh: a shell loop around it stops


def test_ctrl_c_stops_a_shell_loop_around_sched(sched_env):
    """The terminal's Ctrl-C reaches the shell and sched (one process group): sched cleans up,
    then ends by SIGINT, so the shell stops its loop instead of going on to the next run."""
    loop = (f"for i in 1 2 3; do echo run $i; {shlex.join(SCHED_COMMAND)} -c 'puts ready; flush stdout; "
            "after 60000'; done; echo loop went on")
    shell = subprocess.Popen(["bash", "-c", loop], env=sched_env, start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        assert [shell.stdout.readline(), shell.stdout.readline()] == ["run 1\n", "ready\n"]
        os.killpg(shell.pid, signal.SIGINT)
        out, _ = shell.communicate(timeout=60)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
    assert "interrupted" in out and "run 2" not in out and "loop went on" not in out, out
    assert shell.returncode == -signal.SIGINT


def test_a_reader_that_leaves_early_gets_tcl_s_error_not_a_traceback(tmp_path):
    """`sched script | head -1`: puts fails with Tcl's error (catchable), nothing else is said."""
    script = 'catch {while 1 {puts line}} e; puts stderr "caught: $e"; while 1 {puts again}'
    reader = subprocess.Popen([*SCHED_COMMAND, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**os.environ, "SCHED_HOME": str(tmp_path)})
    assert reader.stdout.readline() == b"line\n"
    reader.stdout.close()                        # the reader leaves
    err = reader.stderr.read().decode()
    assert reader.wait(30) == 1
    assert 'caught: error writing "stdout": broken pipe' in err
    assert '-c:1:67: error writing "stdout": broken pipe' in err      # where the script failed
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_an_empty_host_name_is_refused_when_the_task_is_read(sched_env, tmp_path):
    (tmp_path / "t.sched").write_text('puts [set w sta]rted\ntask t\n  command true\n  host ""\n  nmax 1\nend\n')
    done = subprocess.run(SCHED_COMMAND + ["t.sched"], capture_output=True, text=True, env=sched_env, cwd=tmp_path,
                          timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""  # refused when read: nothing ran
    assert done.stderr.startswith("t.sched:4:8: a host name cannot be empty or hold blanks, got ''")


def test_queuepush_key_counts_words_from_0_and_joins_columns(sched_env):
    script = """
foreach line {{h1 a x 1} {h1 b x 2} {h2 a x 3}}
  queuepush byhost -uniq -key 0 $line
  queuepush bypair -uniq -key 0:2 $line
end
puts "[queuelist byhost] | [queuesize bypair]"
"""
    done = subprocess.run(SCHED_COMMAND + ["-c", script], capture_output=True, text=True, env=sched_env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "{h1 a x 1} {h2 a x 3} | 2\n", "")


def test_a_signal_while_asyncio_is_half_imported_finds_no_loop(monkeypatch):
    """A stop signal's handler asks whether the loop runs; a standby re-exec'd by a pool got one
    while it was importing asyncio ("partially initialized module 'asyncio'", a traceback)."""
    import types

    from psched.scheduler.eventloop import loop_running

    monkeypatch.setitem(sys.modules, "asyncio", types.ModuleType("asyncio"))  # (its names not made yet)
    assert loop_running() is False


STDIN_MIX = ("puts hi\nputs [gets stdin]\ndata line\nputs after\nset n [gets stdin x]; puts \"$n <$x>\"\n\n"
             "puts [string length [read stdin]]\nthe rest\nof it\n")


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="no tclsh to compare with")
def test_gets_stdin_in_commands_from_stdin_takes_the_next_line_as_tclsh_does(sched_env):
    """Commands and a script's reads share stdin: the line after `gets stdin` is data, not a
    command; an error after it names its true line."""
    tcl = subprocess.run(["tclsh"], input=STDIN_MIX, capture_output=True, text=True, timeout=30)
    ours = subprocess.run(SCHED_COMMAND, input=STDIN_MIX, capture_output=True, text=True, timeout=60, env=sched_env)
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, tcl.stdout, "")
    assert ours.stdout == "hi\ndata line\nafter\n0 <>\n15\n"
    failing = subprocess.run(SCHED_COMMAND, input="puts [gets stdin]\ndata\nnosuchcmd\n", capture_output=True,
                             text=True, timeout=60, env=sched_env)
    assert failing.stdout == "data\n" and failing.stderr.startswith('<stdin>:3:1: invalid command name "nosuchcmd"')
