"""Command tables: usage lines drive binding, arity errors, ensembles, help and completion."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pcontrol.commands import CommandResult, CommandTable, Usage
from pcontrol.errors import UnknownCommandError, UsageError
from pcontrol.verbs import TABLE


def bind(usage: str, words: list[str]) -> dict[str, Any]:
    return Usage.parse(usage).bind(words, "cmd")


@pytest.mark.parametrize("usage, words, expected", [
    ("NAME ?-slots SLOTS? ?-connect COMMAND?", ["n1"],
     {"name": "n1", "slots": None, "connect": None}),
    ("NAME ?-slots SLOTS? ?-connect COMMAND?", ["n1", "-slots", "4", "-connect", "ssh -p 2 n1"],
     {"name": "n1", "slots": 4, "connect": "ssh -p 2 n1"}),
    ("NAME ?-slots SLOTS?", ["-slots", "2", "n1"], {"name": "n1", "slots": 2}),
    ("NAME ?-slots SLOTS?", ["n1", "-sl", "2"], {"name": "n1", "slots": 2}),   # prefix
    ("?-force? ID", ["5", "-force"], {"id": "5", "force": True}),
    ("?-force? ID", ["5"], {"id": "5", "force": False}),
    ("?-priority N? -- ARGV...", ["-priority", "-3", "echo", "-n", "x"],
     {"priority": -3, "argv": ["echo", "-n", "x"]}),
    ("?-priority N? -- ARGV...", ["--", "-weird", "x"], {"priority": None, "argv": ["-weird", "x"]}),
    ("?-env K=V? -- ARGV...", ["-env", "A=1", "-env", "B=x=y", "env"],
     {"env": {"A": "1", "B": "x=y"}, "argv": ["env"]}),
    ("?-timeout S? -- ARGV...", ["-timeout", "1.5", "sleep", "9"],
     {"timeout": 1.5, "argv": ["sleep", "9"]}),
    ("ID... ?-owner OWNER?", ["1", "2", "-owner", "me", "3"],
     {"id": ["1", "2", "3"], "owner": "me"}),
    ("?COMMAND...?", [], {"command": []}),
    ("ID", ["-x"], {"id": "-x"}),        # no options declared: a dash word is a value
    ("A ?B? C", ["a", "c"], {"a": "a", "b": None, "c": "c"}),
    ("A ?B? C", ["a", "b", "c"], {"a": "a", "b": "b", "c": "c"}),
])
def test_binding(usage: str, words: list[str], expected: dict[str, Any]) -> None:
    bound = bind(usage, words)
    for key, value in expected.items():
        assert bound[key] == value


@pytest.mark.parametrize("usage, words, message", [
    ("NAME ?-slots SLOTS?", [], 'wrong # args: should be "cmd NAME ?-slots SLOTS?"'),
    ("NAME ?-slots SLOTS?", ["a", "b"], "wrong # args"),
    ("NAME ?-slots SLOTS?", ["a", "-slots"], 'option "-slots" of "cmd" needs a value (SLOTS)'),
    ("NAME ?-slots SLOTS?", ["a", "-slots", "many"], 'expected an integer for -slots'),
    ("NAME ?-slots SLOTS?", ["a", "-slots", "0"], "-slots must be at least 1"),
    ("NAME ?-slots SLOTS?", ["a", "-slots", "2000000"], "-slots must be at most 1000000"),
    ("?-id N? -- ARGV...", ["-id", "9" * 20, "x"], "-id is out of range (at most 9223372036854775807)"),
    ("?-timeout S? -- ARGV...", ["-timeout", "1e300", "x"], "-timeout must be at most 1e+10 seconds"),
    ("?-not-before EPOCH? -- ARGV...", ["-not-before", "1e300", "x"], "between 1970 and the year 9999"),
    ("?-not-before EPOCH? -- ARGV...", ["-not-before", "soon", "x"], "expected a time in seconds since the epoch"),
    ("NAME ?-slots SLOTS?", ["a", "-bogus", "1"], 'unknown option "-bogus" for "cmd": should be -slots'),
    ("?-force? ?-four?", ["-fo"], 'ambiguous option "-fo"'),
    ("?-timeout S? -- ARGV...", ["-timeout", "-1", "x"], "seconds >= 0"),
    ("?-timeout S? -- ARGV...", ["-timeout", "nan", "x"], "finite"),
    ("?-env K=V? -- ARGV...", ["-env", "novalue", "x"], "KEY=VALUE"),
    ("?-timeout S? -- ARGV...", ["-timeout", "3"], "wrong # args"),
])
def test_binding_errors(usage: str, words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        bind(usage, words)
    assert message in caught.value.message


def test_usage_lines_must_be_well_formed() -> None:
    with pytest.raises(ValueError):
        Usage.parse("?-open")
    with pytest.raises(ValueError):
        Usage.parse("A... B")


def _table() -> CommandTable:
    table = CommandTable()
    for path in ("host add", "host delete", "hosts", "help"):
        table.add_from = None
        table.command(path, "NAME" if path.startswith("host ") else "?-json?", f"the {path}")(
            lambda session, args, path=path: CommandResult(path, {"path": path, **args}))
    return table


def test_ensembles_resolve_with_unique_prefixes() -> None:
    table = _table()
    command, args = table.bind(["host", "a", "n1"])
    assert command.path == "host add" and args["name"] == "n1"
    assert table.bind(["host", "del", "n1"])[0].path == "host delete"
    assert table.bind(["hosts"])[0].path == "hosts"        # exact beats prefix


@pytest.mark.parametrize("argv, message", [
    (["frob"], 'unknown command "frob": should be one of help, host, or hosts'),
    (["ho"], 'ambiguous command "ho": should be one of host or hosts'),
    (["host", "x", "n"], 'unknown subcommand "x" of "host": should be one of add or delete'),
    (["host"], 'wrong # args: should be "host subcommand ?arg ...?"'),
])
def test_ensemble_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        _table().bind(argv)
    assert message in caught.value.message
    if "unknown" in message or "ambiguous" in message:
        assert isinstance(caught.value, UnknownCommandError)


def test_duplicate_declaration_refused() -> None:
    table = _table()
    with pytest.raises(ValueError, match="twice"):
        table.command("host add", "NAME", "again")(lambda s, a: CommandResult())


def test_json_flag_turns_text_into_data() -> None:
    result = asyncio.run(_table().run(None, ["hosts", "-json"]))
    assert json.loads(result.text) == result.data == {"path": "hosts", "json": True}


def test_help_comes_from_usage_lines() -> None:
    text = TABLE.help(["host"]).text
    assert "host add NAME ?-slots SLOTS? ?-connect COMMAND?" in text
    assert "host retry NAME" in text and "jobs ?-state" not in text
    assert [d["command"] for d in TABLE.help(["check", "job"]).data] == ["check job"]
    every = {d["command"] for d in TABLE.help([]).data}
    assert {"job", "jobs", "kill", "delete", "harvest", "subscribe", "check host"} <= every


def test_every_listing_takes_json() -> None:
    for path in ("hosts", "jobs", "status", "check host", "check job", "stdout", "stderr"):
        command, _ = TABLE.resolve(path.split())
        assert any(o.name == "json" for o in command.usage.options), path


@pytest.mark.parametrize("words, prefix, expected", [
    ([], "ho", ["host", "hosts"]),
    (["host"], "", ["add", "delete", "key", "off", "on", "retry"]),
    (["host"], "o", ["off", "on"]),
    (["host", "add", "n1"], "-", ["-account", "-address", "-connect", "-output", "-partition",
                                  "-port", "-pull", "-qos", "-sbatch", "-slots", "-slurm"]),
    (["host", "add", "n1", "-slots", "2"], "-", ["-account", "-address", "-connect", "-output",
                                                 "-partition", "-port", "-pull", "-qos", "-sbatch", "-slurm"]),
    (["host", "delete"], "n", ["n1", "n2"]),
    (["check", "host"], "", ["n1", "n2"]),
    (["job", "-host"], "", ["n1", "n2"]),
    (["jobs", "-state"], "P", ["PENDING"]),
    (["bogus"], "", []),
])
def test_completion(words: list[str], prefix: str, expected: list[str]) -> None:
    def values(metavar: str) -> list[str]:
        if metavar in ("NAME", "H"):
            return ["n1", "n2"]
        if metavar == "STATE":
            return ["PENDING", "BUSY", "DONE"]
        return []
    assert TABLE.complete(words, prefix, values) == expected
