"""psched.shell.completer: what Tab offers, as tables of (input before the cursor, expected candidates)."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

import psched  # noqa: F401  (registers the language's commands)
from psched.shell.completer import Candidate, SchedCompleter, add_completer, analyse, complete
from psched.lang.interp import Interp
from psched.lang.registry import CommandDef, Registry, parse_usage


def _registry() -> Registry:
    """A small command table of our own, so the tests do not depend on other modules' commands."""
    reg = Registry()
    noop = lambda interp, argv: ""  # noqa: E731

    reg.command("set varName ?value?", "read or write a variable")(noop)
    reg.command("setup ?-verbose? ?-level n? name", "prepare")(noop)
    reg.command("echo ?word ...?", "print words")(noop)
    reg.command("help ?command? ?subcommand?", "say how to use a command")(noop)
    reg.command("source fileName", "run a file")(noop)
    reg.command("queuepop name ?-var V?", "take a line")(noop)
    thing = reg.ensemble("thing", "an ensemble")
    thing.sub("thing alpha ?-fast? x", "first")(noop)
    thing.sub("thing beta", "second")(noop)
    thing.sub("thing bet", "third")(noop)
    # a nested ensemble, as `controller host add` will be
    ctl = reg.ensemble("controller", "talk to the controller")
    hosts = {"add": CommandDef("controller host add", parse_usage("controller host add name ?-slots n?", 3), "add a host", fn=noop),
             "remove": CommandDef("controller host remove", parse_usage("controller host remove name", 3), "remove", fn=noop)}
    ctl.table["host"] = CommandDef("controller host", parse_usage("controller host sub ?arg ...?", 2), "hosts", fn=noop,
                                   subcommands=hosts)
    return reg


@pytest.fixture
def interp() -> Interp:
    interp = Interp(registry=_registry())
    interp.set_var("alpha", "1")
    interp.set_var("alps", "2")
    interp.set_var("arr", "x", index="one")
    interp.set_var("arr", "y", index="two")
    interp.queues["jobsq"] = []
    interp.queues["other"] = []
    return interp


def texts(interp: Interp, text: str) -> list[str]:
    return [c.text for c in complete(interp, text)[1]]


@pytest.mark.parametrize("text, expected", [
    ("se", ["set", "setup"]),
    ("setu", ["setup"]),
    ("xyz", []),
    ("e", ["echo", "elif", "else", "elseif", "end"]),  # block words may start a line too
    ("echo [se", ["set", "setup"]),  # a command substitution starts a command
    ("echo a; se", ["set", "setup"]),
    ("echo a\nse", ["set", "setup"]),
    ("thing {\n  se", ["set", "setup"]),  # a braced body is a script
    ("echo \"x [se", ["set", "setup"]),
])
def test_command_names(interp, text, expected):
    assert texts(interp, text) == expected


def test_command_candidates_carry_their_help(interp):
    current, found = complete(interp, "ec")
    assert current == "ec"
    assert found == [Candidate("echo", "print words")]


@pytest.mark.parametrize("text, expected", [
    ("thing ", ["alpha", "bet", "beta"]),
    ("thing b", ["bet", "beta"]),
    ("thing beta ", []),
    ("controller ", ["host"]),
    ("controller host ", ["add", "remove"]),
    ("controller h r", ["remove"]),  # unique prefixes name the ensemble on the way down
    ("help ", ["controller", "echo", "help", "queuepop", "set", "setup", "source", "thing"]),
    ("help thing ", ["alpha", "bet", "beta"]),
])
def test_subcommands(interp, text, expected):
    assert texts(interp, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("setup -", ["-level", "-verbose"]),
    ("setup -v", ["-verbose"]),
    ("setup -verbose -", ["-level"]),  # options already given are not offered again
    ("thing alpha -", ["-fast"]),
    ("controller host add n1 -", ["-slots"]),
    ("echo -", []),
])
def test_options(interp, text, expected):
    assert texts(interp, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("echo $", ["alpha", "alps", "arr", "env"]),
    ("echo $al", ["alpha", "alps"]),
    ("echo ${alp", ["alpha", "alps"]),
    ("echo \"value: $alph", ["alpha"]),
    ("echo $arr(", ["one", "two"]),
    ("echo $arr(t", ["two"]),
    ("echo \\$al", []),  # an escaped dollar is no variable
    ("set al", ["alpha", "alps"]),  # a varName parameter
    ("queuepop jobsq -var al", ["alpha", "alps"]),  # the value of -var names a variable
])
def test_variables(interp, text, expected):
    assert texts(interp, text) == expected


def test_env_keys_complete(interp, monkeypatch):
    monkeypatch.setenv("SCHED_TEST_COMPLETION", "1")
    assert texts(interp, "echo $env(SCHED_TEST_COMP") == ["SCHED_TEST_COMPLETION"]


def test_queue_names_and_file_names(interp, tmp_path, monkeypatch):
    assert texts(interp, "queuepop ") == ["jobsq", "other"]
    assert texts(interp, "queuepop j") == ["jobsq"]
    (tmp_path / "script.sched").write_text("")
    (tmp_path / "scripts").mkdir()
    monkeypatch.chdir(tmp_path)
    assert texts(interp, "source scr") == ["script.sched", "scripts/"]
    assert texts(interp, f"source {tmp_path}/script.") == [f"{tmp_path}/script.sched"]


def test_nothing_in_a_comment(interp):
    assert texts(interp, "# se") == []


def test_extension_completers(interp):
    seen = []

    def tasks(interp_, words, current):
        seen.append((words, current))
        if words and words[0] in ("check", "kill"):
            return ["fetch", "fold", "build"]
        return []

    def broken(interp_, words, current):
        raise RuntimeError("a completer with a bug")

    add_completer(interp, broken)
    add_completer(interp, tasks)
    assert texts(interp, "check f") == ["fetch", "fold"]
    assert seen[-1] == (["check"], "f")
    assert texts(interp, "kill ") == ["build", "fetch", "fold"]
    assert texts(interp, "echo ") == []
    assert interp.completers == [broken, tasks]


def test_analyse_words_and_current_word():
    ctx = analyse('thing alpha "a b" {c d} [x y] e')
    assert ctx.words == ["thing", "alpha", '"a b"', "{c d}", "[x y]"]
    assert ctx.current == "e"
    ctx = analyse("set x {a{b}c} ")
    assert ctx.words == ["set", "x", "{a{b}c}"] and ctx.current == ""


def test_builtin_commands_complete():
    interp = Interp()
    assert "string" in texts(interp, "stri")
    assert "length" in texts(interp, "string le")
    assert texts(interp, "queuepush q -") == ["-key", "-uniq"]


def test_prompt_toolkit_completer_replaces_the_partial_word(interp):
    completer = SchedCompleter(interp)
    document = Document("echo $al")
    found = list(completer.get_completions(document, CompleteEvent(completion_requested=True)))
    assert [(c.text, c.start_position) for c in found] == [("alpha", -2), ("alps", -2)]
