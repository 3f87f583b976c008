"""NetJobs configuration files: what parses to what, and the errors (file, line, column)."""

from __future__ import annotations

import pytest

from psched.scheduler.syncdefs import DurationError, parse_duration
from psched.shell.netjobs import NetJobsError, parse_netjobs

README = """\
test0:
-generaltimeout: none
-minhosts: all
localhost: "echo 'hello, world'"
-timeout: 1s
end

test1:
-generaltimeout: 5m
-minhosts: 0
172.17.1.19: "./some_test_script.sh"
-timeout: 30s
182.17.1.20: "./other_test_script.sh"
182.17.1.20: "./and_another_test_script.sh"
end
"""


def test_the_readme_example():
    test0, test1 = parse_netjobs(README, "readme.cfg")
    assert (test0.name, test0.timeout, test0.minhosts) == ("test0", None, None)
    assert [(t.host, t.argv, t.timeout) for t in test0.targets] == [
        ("localhost", ("/bin/sh", "-c", "echo 'hello, world'"), 1.0)]
    assert (test1.name, test1.timeout, test1.minhosts) == ("test1", 300.0, 0)
    assert [(t.host, t.argv[-1], t.timeout, t.timeout_set) for t in test1.targets] == [
        ("172.17.1.19", "./some_test_script.sh", 30.0, True),
        ("182.17.1.20", "./other_test_script.sh", None, False),
        ("182.17.1.20", "./and_another_test_script.sh", None, False)]
    assert test0.add_hosts and test1.to_spec()["targets"][1]["timeout"] is None


def test_tolerant_white_space_and_comments():
    text = "# a comment\n\n  t :  \n  -minhosts :  2 \n # inside\n a:\"x\"\n\tb  :   \"y z\"  \nend\n"
    (test,) = parse_netjobs(text)
    assert test.minhosts == 2 and [t.argv[-1] for t in test.targets] == ["x", "y z"]


@pytest.mark.parametrize("text, line, column, message", [
    ("test0\nend\n", 1, 1, "expected a test label followed by a colon"),
    ("test0:\nn1: echo hi\nend\n", 2, 5, "expected the command in quotation marks"),
    ("test0:\nn1: \"echo\"\n-minhosts: 1\nend\n", 3, 1, "-minhosts must come before the targets"),
    ("test0:\n-timeout: 1s\nn1: \"x\"\nend\n", 2, 1, "-timeout belongs after a target line"),
    ("test0:\n-generaltimeout: 5x\nn1: \"x\"\nend\n", 2, 18, "-generaltimeout expects seconds"),
    ("test0:\n-minhosts: 3\nn1: \"x\"\nend\n", 4, 1, "-minhosts 3 is more than its 1 target"),
    ("test0:\n-colour: red\nend\n", 2, 1, "unknown option -colour"),
    ("test0:\nend\n", 2, 1, "has no targets"),
    ("test0:\nn1: \"x\"\n", 1, 1, "test test0 opened at line 1 has no `end`"),
    ("test0:\nn1: \"\"\nend\n", 2, 5, "target n1 has no command"),
    ("t:\nn1: \"x\"\nend\nt:\nn1: \"x\"\nend\n", 4, 1, "test label 't' is used twice"),
    ("# nothing\n", 1, 1, "no tests"),
    ("end\n", 1, 1, "got `end` outside a test"),
    ("test0:\n just words\nend\n", 2, 2, "expected \"KEY: VALUE\""),
])
def test_errors_name_the_line_and_column(text, line, column, message):
    with pytest.raises(NetJobsError) as caught:
        parse_netjobs(text, "my.cfg")
    err = caught.value
    assert (err.line, err.column) == (line, column), str(err)
    assert message in err.message
    assert str(err).startswith(f"my.cfg:{line}:{column}: ")


@pytest.mark.parametrize("text, seconds", [
    ("330s", 330.0), ("5m", 300.0), ("2h", 7200.0), ("1.5", 1.5), ("none", None), ("NONE", None), ("0", 0.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "-1", "", "1d", "s", "1 m s"])
def test_bad_durations(text):
    with pytest.raises(DurationError):
        parse_duration(text)
