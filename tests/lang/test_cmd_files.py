"""`file`, `glob`, `pwd`, `cd` and the channels (psched.lang.commands.files, psched.lang.channels):
what the tclsh corpus (tests/lang/tclcompat/scripts/files.tcl, channels.tcl) cannot see: the
bytes on disk, descriptors, the exit hook, the log, the home directory."""

from __future__ import annotations

import logging
import os

import pytest

import psched
from psched.lang import channels as channels_module
from psched.lang.commands.files import expand_braces, join_path, split_path
from psched.lang.errors import SchedError


@pytest.fixture
def interp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return psched.Interp()


def test_puts_appends_lines_that_python_reads_back(interp, tmp_path):
    interp.eval('foreach j {a b} { set ch [open report.txt a]; puts $ch "job $j done"; close $ch }')
    assert (tmp_path / "report.txt").read_bytes() == b"job a done\njob b done\n"


def test_text_is_utf8_and_other_bytes_read_as_latin1(interp, tmp_path):
    (tmp_path / "in.txt").write_bytes("café\n".encode() + b"caf\xe9\r\nend")
    got = interp.eval("set ch [open in.txt]; set a [gets $ch]; set b [gets $ch]; set c [read $ch]; close $ch; list $a $b $c")
    assert got == "café café end"
    interp.eval('set ch [open out.txt w]; puts $ch "\u20ac"; close $ch')
    assert (tmp_path / "out.txt").read_bytes() == "€\n".encode()


def test_channel_names_are_file_and_the_descriptor_which_jobs_do_not_inherit(interp):
    name = interp.eval("open f.txt w")
    assert name.startswith("file")
    fd = int(name[4:])
    assert os.get_inheritable(fd) is False  # close-on-exec: a job started now does not get it
    assert interp.eval("exec sh -c {ls /proc/self/fd}").split() .count(str(fd)) == 0
    interp.eval(f"close {name}")
    with pytest.raises(OSError):
        os.fstat(fd)


def test_the_exit_hooks_close_and_flush_what_a_script_left_open(interp, tmp_path):
    assert interp.exit_hooks == []
    interp.eval("set a [open a.txt w]; puts $a kept; set b [open b.txt w]")
    assert len(interp.exit_hooks) == 1  # one hook, however many opens
    assert (tmp_path / "a.txt").read_bytes() == b""  # buffered, as in Tcl
    for hook in interp.exit_hooks:
        hook(interp)
    assert (tmp_path / "a.txt").read_bytes() == b"kept\n"
    assert interp.eval("file channels") == "stdin stdout stderr"


def test_many_open_channels_are_logged_once(interp, caplog, monkeypatch):
    monkeypatch.setattr(channels_module, "MANY_CHANNELS", 3)
    with caplog.at_level(logging.WARNING, logger="psched.lang.channels"):
        interp.eval("for {set i 0} {$i < 6} {incr i} { open f$i.txt w }")
    warnings = [r for r in caplog.records if "open channels" in r.getMessage()]
    assert len(warnings) == 1 and "4 open channels" in warnings[0].getMessage()
    interp.channels.close_all()


def test_puts_and_flush_stdout_go_where_the_interpreter_writes(tmp_path, monkeypatch):
    import io

    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    interp = psched.Interp(stdout=out)
    interp.eval("puts -nonewline stdout a; flush stdout; puts b; close stdout; puts c")
    assert out.getvalue() == "ab\nc\n"


def test_cd_without_a_directory_goes_home_and_tilde_is_home(interp, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert interp.eval("cd; pwd") == str(home)
    assert interp.eval("file isdirectory ~/work") == "1"
    assert interp.eval("file nativename ~/work") == str(home / "work")
    assert interp.eval("lsort [glob ~/*]") == str(home / "work")
    monkeypatch.delenv("HOME")
    with pytest.raises(SchedError, match="HOME"):
        interp.eval("cd")


def test_glob_finds_work_files_in_directory_order(interp, tmp_path):
    for name in ("a.job", "b.job", "c.txt", ".hidden.job"):
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text("x")
    got = interp.eval("glob -nocomplain -directory in -tails *.job")
    assert sorted(got.split()) == ["a.job", "b.job"]
    assert sorted(interp.eval("glob in/{a,c}.*").split()) == ["in/a.job", "in/c.txt"]
    assert interp.eval("glob -nocomplain -types d in/*") == ""


@pytest.mark.parametrize("pattern,expected", [
    ("abc", ["abc"]),
    ("{a,b}", ["a", "b"]),
    ("x{a,b{c,d}}y", ["xay", "xbcy", "xbdy"]),
    ("{a,b}{1,2}", ["a1", "a2", "b1", "b2"]),
    (r"\{a,b}", [r"\{a,b}"]),
    ("{}", [""]),
])
def test_brace_alternatives(pattern, expected):
    assert expand_braces(pattern) == expected


def test_unmatched_brace_is_tcl_s_error():
    with pytest.raises(SchedError, match="unmatched open-brace in file name"):
        expand_braces("a{b")


@pytest.mark.parametrize("path,parts", [
    ("/a/b", ["/", "a", "b"]), ("a//b/", ["a", "b"]), ("~/x", ["~", "x"]), ("a/~b", ["a", "./~b"]), ("", []),
])
def test_split_and_join_are_inverse(path, parts):
    assert split_path(path) == parts
    if parts:
        assert split_path(join_path(parts)) == parts


def test_open_refuses_pipelines_and_says_what_to_use(interp):
    with pytest.raises(SchedError, match="use exec"):
        interp.eval('open "|ls"')


def test_open_permissions_are_octal_as_in_tcl(interp, tmp_path):
    old = os.umask(0o022)
    try:
        interp.eval("close [open p.txt w 0640]")
    finally:
        os.umask(old)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o640


def test_help_and_usage_come_from_the_declarations(interp):
    assert interp.eval("help gets").startswith("gets channelId ?varName?")
    assert "file join name ?name ...?" in interp.eval("help file")
    with pytest.raises(SchedError, match=r'wrong # args: should be "file size name"'):
        interp.eval("file size")


def test_a_dry_run_changes_no_file_and_says_what_it_would_do(interp, tmp_path):
    """What a simulation hands in (psched.scheduler.simulation): files opened for writing are
    kept in memory, and what would create, delete or move files is told instead of done."""
    (tmp_path / "old.txt").write_text("first\n")
    (tmp_path / "dir").mkdir()
    told: list[str] = []
    interp.channels.dry_run = told.append
    got = interp.eval("set ch [open old.txt a+]; puts $ch second; seek $ch 0; set text [read $ch]; close $ch\n"
                      "file delete -force dir; file mkdir new; file rename old.txt moved.txt; file copy old.txt c.txt\n"
                      "close [open new.txt w]; set text")
    assert got == "first\nsecond\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "old.txt"]
    assert (tmp_path / "old.txt").read_text() == "first\n"
    assert told == ["open old.txt a+ (kept in memory)", "file delete -force dir", "file mkdir new",
                    "file rename old.txt moved.txt", "file copy old.txt c.txt", "open new.txt w (kept in memory)"]
    with pytest.raises(SchedError, match='couldn\'t open "nothere.txt": no such file or directory'):
        interp.eval("open nothere.txt r+")


def test_binary_translation_keeps_every_byte(interp, tmp_path):
    data = bytes(range(256)) * 2
    (tmp_path / "in.bin").write_bytes(data)
    interp.eval("set in [open in.bin]; fconfigure $in -translation binary; set t [read $in]; close $in\n"
                "set out [open out.bin w]; fconfigure $out -translation binary; puts -nonewline $out $t; close $out")
    assert interp.eval("string length $t") == "512"
    assert (tmp_path / "out.bin").read_bytes() == data


def test_fconfigure_after_a_read_goes_on_from_the_same_place(interp, tmp_path):
    """Python will not change a text file's settings once it has read: the channel is wrapped
    again at the place the script had reached."""
    (tmp_path / "in.txt").write_bytes(b"first\r\nsecond\r\nthird\n")
    got = interp.eval("set f [open in.txt]; set a [gets $f]; fconfigure $f -translation binary\n"
                      "set b [gets $f]; set c [read $f]; close $f; list $a [string length $b] $c")
    assert got == "first 7 {third\n}"


def test_reads_are_bounded_as_other_strings_are(interp, tmp_path, monkeypatch):
    from psched.lang.commands import files

    monkeypatch.setattr(files, "MAX_STRING", 10)
    (tmp_path / "big.txt").write_text("short\n" + "x" * 20 + "\n")
    assert interp.eval("set f [open big.txt]; gets $f") == "short"
    with pytest.raises(SchedError, match="a line longer than 10 characters"):
        interp.eval("gets $f")
    with pytest.raises(SchedError, match="more than 10 characters"):
        interp.eval("seek $f 0; read $f")
    assert interp.eval("seek $f 0; read $f 6") == "short\n"
    interp.eval("close $f")
