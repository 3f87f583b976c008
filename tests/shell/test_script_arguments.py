"""$argv0, $argv and $argc through the real program: `sched FILE... -- ARG...`, `-c`, stdin, the
prompt, `sched --args FILE ARG...` from a `#!` line, a server's `reload`, `--simulate`, and the
options that refuse arguments. tclsh 8.6 is the oracle for the values."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from psched_test_command import SCHED_COMMAND, VENV_SCHED

pytestmark = pytest.mark.timeout(60)

PROBE = """\
puts "argv0=<$argv0> argc=<$argc> llength=<[llength $argv]>"
puts "argv=<$argv>"
foreach word $argv {puts "<$word>"}
puts "globals=<[lsort [info globals arg*]]>"
"""
"""Prints what a script sees; the same text in Tcl and in sched."""

AWKWARD = ["plain", "two words", "", "{", "}", "x}", "{a b}", "a{", "$y", "[cmd]", "\\", "a\\", "a\nb", "#x",
           "a;b", '"q"', "\t", "-c", "--", "--args", "caf\u00e9", "{}"]
"""Arguments that a list must quote: blanks, braces (a lone one too), the empty string, Tcl's
special characters, and sched's own options, which are only words after `--`."""


def run(env: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(SCHED_COMMAND + list(args), input=stdin, capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=30)


def ok(done: subprocess.CompletedProcess) -> str:
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout


def tclsh(cwd: Path, script: Path, *args: str) -> str:
    tcl = shutil.which("tclsh")
    if tcl is None:
        pytest.skip("tclsh is not installed (scripts/setup installs it)")
    done = subprocess.run([tcl, str(script), *args], capture_output=True, text=True, cwd=cwd, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_words_after_dashes_are_the_script_s_argv_as_tclsh_gives_them(sched_env, tmp_path):
    (tmp_path / "probe.sched").write_text(PROBE)
    out = ok(run(sched_env, tmp_path, "probe.sched", "--", *AWKWARD))
    assert out.startswith(f"argv0=<probe.sched> argc=<{len(AWKWARD)}> llength=<{len(AWKWARD)}>\n")
    assert out == tclsh(tmp_path, tmp_path / "probe.sched", *AWKWARD).replace(str(tmp_path / "probe.sched"),
                                                                             "probe.sched")


def test_without_dashes_argv_is_empty_and_argv0_the_first_file(sched_env, tmp_path):
    (tmp_path / "probe.sched").write_text(PROBE)
    (tmp_path / "first.sched").write_text("set x 1\n")
    out = ok(run(sched_env, tmp_path, "first.sched", "probe.sched"))
    assert out == "argv0=<first.sched> argc=<0> llength=<0>\nargv=<>\nglobals=<argc argv argv0>\n"
    assert out.replace("first", "probe") == tclsh(tmp_path, tmp_path / "probe.sched").replace(
        str(tmp_path / "probe.sched"), "probe.sched")


def test_c_stdin_and_no_file_have_argv0_sched(sched_env, tmp_path):
    show = 'puts [list $argv0 $argv $argc]'
    assert ok(run(sched_env, tmp_path, "-c", show, "--", "a", "b c")) == "sched {a {b c}} 2\n"
    assert ok(run(sched_env, tmp_path, "-c", show)) == "sched {} 0\n"
    assert ok(run(sched_env, tmp_path, "--", "x", stdin=show + "\n")) == "sched x 1\n"
    assert ok(run(sched_env, tmp_path, stdin=show + "\n")) == "sched {} 0\n"
    (tmp_path / "lib.sched").write_text("set x 1\n")
    assert ok(run(sched_env, tmp_path, "lib.sched", "-c", show, "--", "-c", "y")) == "lib.sched {-c y} 2\n"


def test_they_are_plain_globals_a_script_may_change(sched_env, tmp_path):
    script = ("set argv [lassign $argv first]\nincr argc -1\nset argv0 other\n"
              "proc shown {} {global argv argc argv0; return [list $argv $argc $argv0]}\nputs [shown]\n"
              "puts $first\n")
    (tmp_path / "change.sched").write_text(script)
    out = ok(run(sched_env, tmp_path, "change.sched", "--", "h1", "a b"))
    assert out == "{{a b}} 1 other\nh1\n"
    assert out == tclsh(tmp_path, tmp_path / "change.sched", "h1", "a b")


def test_the_prompt_has_argv0_sched(terminal):
    term = terminal("--", "p q")
    term.prompt()
    term.line('puts "<$argv0> <$argv> <$argc>"')
    term.expect("<sched> <{p q}> <1>")
    term.prompt()
    term.line("quit")
    assert term.expect_exit() == 0


@pytest.mark.skipif(not VENV_SCHED.exists(), reason="needs the venv's sched program")
def test_a_hash_bang_line_with_args_makes_the_file_a_tclsh_like_script(sched_env, tmp_path):
    """The kernel runs `INTERPRETER [ONE-ARGUMENT] ./probe ARG...`: through env -S (sched on
    $PATH) and with the program's own path."""
    env = dict(sched_env, PATH=f"{VENV_SCHED.parent}{os.pathsep}{sched_env['PATH']}")
    for name, line in (("probe", "#!/usr/bin/env -S sched --args"), ("direct", f"#!{VENV_SCHED} --args")):
        script = tmp_path / name
        script.write_text(f"{line}\n{PROBE}")
        script.chmod(0o755)
        done = subprocess.run([f"./{name}", "host1", *AWKWARD], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=30)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.startswith(f"argv0=<./{name}> argc=<{len(AWKWARD) + 1}>")
        assert done.stdout == tclsh(tmp_path, Path(name), "host1", *AWKWARD).replace(
            f"argv0=<{name}>", f"argv0=<./{name}>")
    done = subprocess.run(["./probe"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    assert done.stdout.startswith("argv0=<./probe> argc=<0> llength=<0>\nargv=<>\n")


def test_args_and_dashes_misused_are_usage_errors(sched_env, tmp_path):
    (tmp_path / "a.sched").write_text("set x 1\n")
    for args, said in ((["--args"], "--args: expected FILE"),
                       (["a.sched", "--args", "a.sched"], "no FILE goes before it"),
                       (["--attach", "--", "x"], "not with --attach or --stop"),
                       (["--stop", "--args", "a.sched"], "not with --attach or --stop"),
                       (["--sites", str(tmp_path), "--", "x"], "do not go with --sites or --netjobs"),
                       (["--netjobs", "a.sched", "--args", "a.sched"], "do not go with --sites or --netjobs")):
        done = run(sched_env, tmp_path, *args)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)


def test_simulate_gives_the_script_its_arguments(sched_env, tmp_path):
    (tmp_path / "sim.sched").write_text(
        'puts "argv=<$argv> argc=<$argc> argv0=<$argv0>"\n'
        "task t\n  host LOCAL\n  command echo [lindex $argv 0]\n  periods -poll 60\n  nmax 1\nend\nrun\n")
    out = ok(run(sched_env, tmp_path, "--simulate", "2m", "sim.sched", "--", "x y", "z"))
    assert "argv=<{x y} z> argc=<2> argv0=<sim.sched>\n" in out
    out = ok(run(sched_env, tmp_path, "--simulate", "2m", "--args", "sim.sched", "-v"))
    assert "argv=<-v> argc=<1> argv0=<sim.sched>\n" in out


def test_a_server_keeps_its_arguments_through_reload(sched_env, tmp_path):
    """`sched --serve FILE -- ARG...`: the background server gets the arguments, and each
    `reload` runs the file with the values it was started with, though it consumed them."""
    home = Path(sched_env["SCHED_HOME"])
    (tmp_path / "site.sched").write_text(
        "incr loads\nset first [lindex $argv 0]\nset argv [lrange $argv 1 end]\nincr argc -1\n")
    show = "puts [list $loads $argv0 $first $argv $argc]"
    started = run(sched_env, tmp_path, "--serve", "site.sched", "--", "h1", "{", "a b")
    assert started.returncode == 0, started.stderr
    pid = int((home / "sched.pid").read_text())
    try:
        assert ok(run(sched_env, tmp_path, "-c", show, "--attach")) == "1 site.sched h1 {\\{ {a b}} 2\n"
        ok(run(sched_env, tmp_path, "-c", "set argv changed-at-the-prompt", "--attach"))
        assert run(sched_env, tmp_path, "-c", "reload", "--attach").returncode == 0
        assert ok(run(sched_env, tmp_path, "-c", show, "--attach")) == "2 site.sched h1 {\\{ {a b}} 2\n"
        assert run(sched_env, tmp_path, "-c", "reload", "--attach").returncode == 0
        assert ok(run(sched_env, tmp_path, "-c", show, "--attach")) == "3 site.sched h1 {\\{ {a b}} 2\n"
        assert run(sched_env, tmp_path, "--stop").returncode == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_command_line_is_split_before_either_reader():
    """The words after `--` (after the FILE of `--args`) are the script's, whatever they look
    like; the rest is read as before, the plain forms without argparse (start-up, issue 13)."""
    from psched.shell import cli

    for argv, files, script, arguments, plain in (
            (["a.sched"], ["a.sched"], None, None, True),
            (["a.sched", "b.sched", "--", "x", "--", "-c"], ["a.sched", "b.sched"], None, ["x", "--", "-c"], True),
            (["-c", "s", "--"], [], "s", [], True),
            (["--", "-c", "x"], [], None, ["-c", "x"], True),
            (["--args", "p", "--", "a"], ["p"], None, ["--", "a"], True),
            (["--args", "-p", "-c", "x"], ["-p"], None, ["-c", "x"], True),
            (["--name", "n", "--args", "p", "a"], ["p"], None, ["a"], False),
            (["--simulate", "1h", "p", "--", "a"], ["p"], None, ["a"], False)):
        own = cli._script_words(argv)[0]
        assert (cli._plain_options(own) is not None) == plain, argv
        args = cli._options(argv)
        assert (args.files, args.script, args.arguments) == (files, script, arguments), argv
