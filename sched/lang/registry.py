"""Every command is declared once, with its usage line.

    @BUILTINS.command("set varName ?value?", "read or write a variable")
    def cmd_set(interp, argv): ...

The usage line is the single source of the arity check ("wrong # args: should be ..."), of the
`help` text and of what the shell completes (subcommands and -options). Ensembles (`array get`,
`controller host add`) are tables of subcommands that accept unique prefixes and say what they
should be when a word matches none.

A command function takes (interp, argv) with argv[0] the command name and returns a string.
A command that heads a block (`task NAME ... end`) also has a `block` handler taking
(interp, block); the same name may have both (`if` in Tcl form and in block form).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .errors import ArityError, ScriptError
from .record import Frozen, Record
from .tcllist import quote_element, split_list

__all__ = ["Usage", "CommandDef", "Registry", "BUILTINS", "parse_usage", "resolve_subcommand", "parse_params"]

UNLIMITED = 1 << 30


class Usage(Frozen):
    """A parsed usage line: `name` is the command (and subcommand) words."""

    _fields = ("text", "name", "min_args", "max_args", "options", "params")
    text: str
    name: str
    min_args: int
    max_args: int
    options: tuple[str, ...]
    params: tuple[str, ...]

    def __init__(self, text: str, name: str, min_args: int, max_args: int, options: tuple[str, ...],
                 params: tuple[str, ...]) -> None:
        object.__setattr__(self, "__dict__", {"text": text, "name": name, "min_args": min_args,
                                              "max_args": max_args, "options": options, "params": params})


_TOKEN = re.compile(r"\?[^?]*\?|\{[^}]*\}|\S+")  # `{a b}` is one word: `dict for {k v} ...`


def parse_usage(text: str, name_words: int = 1) -> Usage:
    """Count required and optional arguments in a usage line.

    `?x?` is optional; `x ...`, `?x ...?` and a last word `args` take any number more;
    words starting with `-` inside optional groups are options (for completion).
    """
    tokens = _TOKEN.findall(text)
    name = " ".join(tokens[:name_words])
    params = tokens[name_words:]
    lo = hi = 0
    options: list[str] = []
    for tok in params:
        variadic = tok.endswith("...") or tok.endswith("...?") or tok == "args"
        optional = tok.startswith("?")
        for word in tok.strip("?").split():
            if word.startswith("-") and len(word) > 1:
                options.append(word.split("|")[0] if "|" not in word else word)
        if variadic:
            hi = UNLIMITED
            if not optional and tok != "args":
                lo += 1
        elif optional:
            hi += len(tok.strip("?").split())  # `?-state STATE?` is two words
        else:
            lo += 1
            hi += 1
    hi = max(hi, lo)
    expanded: list[str] = []
    for opt in options:
        expanded.extend(o for o in opt.split("|") if o.startswith("-"))
    return Usage(text, name, lo, hi if hi < UNLIMITED else UNLIMITED, tuple(dict.fromkeys(expanded)), tuple(params))


class CommandDef(Record):
    """One command of the language: how to call it and how to describe it.

    A command with a block form has `block` (the handler) and `block_usage` / `block_help`
    (its header line and description); a block-only command has no `fn`, and its `usage` is
    the header line.
    """

    _fields = ("name", "usage", "help", "fn", "block", "subcommands", "macro", "min_args", "max_args", "block_usage",
               "block_help")
    name: str
    usage: Usage
    help: str
    fn: Callable[[Any, list[str]], str] | None
    block: Callable[[Any, Any], str] | None
    subcommands: dict[str, "CommandDef"] | None
    macro: Any  # a user macro/proc: its definition (psched.lang.interp.Macro)
    min_args: int  # (from the usage line)
    max_args: int
    block_usage: Usage | None
    block_help: str

    def __init__(self, name: str, usage: Usage, help: str, fn: Callable[[Any, list[str]], str] | None = None,
                 block: Callable[[Any, Any], str] | None = None, subcommands: dict[str, "CommandDef"] | None = None,
                 macro: Any = None, min_args: int = 0, max_args: int = UNLIMITED, block_usage: Usage | None = None,
                 block_help: str = "") -> None:
        self.name = name
        self.usage = usage
        self.help = help
        self.fn = fn
        self.block = block
        self.subcommands = subcommands
        self.macro = macro
        self.min_args = usage.min_args  # whatever was given: the usage line says
        self.max_args = usage.max_args
        self.block_usage = block_usage
        self.block_help = block_help

    def check_arity(self, argv: list[str]) -> None:
        if not self.min_args <= len(argv) - 1 <= self.max_args:
            raise ArityError(f'wrong # args: should be "{self.usage.text}"', command=self.name)

    def sub_names(self) -> list[str]:
        return sorted(self.subcommands or ())


def resolve_subcommand(table: dict[str, CommandDef], word: str, what: str = "subcommand", owner: str = "") -> CommandDef:
    """Exact name, else a unique prefix; else an error listing what it should be."""
    found = table.get(word)
    if found is not None:
        return found
    matches = [name for name in table if name.startswith(word)] if word else []
    if len(matches) == 1:
        return table[matches[0]]
    names = sorted(table)
    listing = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1] if names else "(none)"
    kind = "ambiguous" if len(matches) > 1 else "unknown"
    prefix = f"{owner} " if owner else ""
    raise ScriptError(f'{prefix}{kind} {what} "{word}": must be {listing}', command=owner or None)


class Ensemble:
    """A command made of subcommands: `array get`, `info exists`, `string length`."""

    def __init__(self, registry: "Registry", name: str, help: str):
        self.name = name
        self.table: dict[str, CommandDef] = {}
        usage = parse_usage(f"{name} subcommand ?arg ...?")
        self.cdef = CommandDef(name, usage, help, fn=self.dispatch, subcommands=self.table)
        registry.add(self.cdef)

    def sub(self, usage: str, help: str = "") -> Callable:
        parsed = parse_usage(usage, name_words=2)

        def register(fn: Callable) -> Callable:
            sub_name = parsed.name.split()[1]
            self.table[sub_name] = CommandDef(parsed.name, parsed, help, fn=fn)
            return fn

        return register

    def dispatch(self, interp: Any, argv: list[str]) -> str:
        sub = self.table.get(argv[1]) or resolve_subcommand(self.table, argv[1], owner=self.name)
        if not sub.min_args <= len(argv) - 2 <= sub.max_args:
            sub.check_arity(argv[1:])
        return sub.fn(interp, argv)


class Registry:
    """A table of commands by name."""

    def __init__(self) -> None:
        self.commands: dict[str, CommandDef] = {}

    def add(self, cdef: CommandDef) -> CommandDef:
        self.commands[cdef.name] = cdef
        return cdef

    def command(self, usage: str, help: str = "", *, block: Callable | None = None) -> Callable:
        """Declare a command by its usage line."""
        parsed = parse_usage(usage)

        def register(fn: Callable) -> Callable:
            existing = self.commands.get(parsed.name)
            cdef = CommandDef(parsed.name, parsed, help, fn=fn, block=block or (existing.block if existing else None))
            if existing is not None and cdef.block is existing.block:
                cdef.block_usage, cdef.block_help = existing.block_usage, existing.block_help
            self.add(cdef)
            return fn

        return register

    def block(self, usage: str, help: str = "") -> Callable:
        """Declare the block form of a command (`task NAME` ... `end`)."""
        parsed = parse_usage(usage)

        def register(fn: Callable) -> Callable:
            existing = self.commands.get(parsed.name)
            if existing is not None:
                existing.block = fn
                if not existing.help:
                    existing.help = help
            else:
                existing = self.add(CommandDef(parsed.name, parsed, help, fn=None, block=fn))
            existing.block_usage, existing.block_help = parsed, help
            return fn

        return register

    def ensemble(self, name: str, help: str) -> Ensemble:
        return Ensemble(self, name, help)


BUILTINS = Registry()
"""The language's own commands; each Interp starts from a copy of this table."""


class Macro(Record):
    """A user-defined command: `macro NAME ?params?` ... `end`, or Tcl's `proc`.

    A macro's variables are global unless declared `local` (params and $0..$N are local);
    a proc's are local unless declared `global`, as in Tcl.
    """

    _fields = ("name", "params", "body", "kind", "variadic", "defined_at", "called")
    name: str
    params: list[tuple[str, str | None]]  # (name, default or None)
    body: Any  # Script
    kind: str  # "macro" or "proc"
    variadic: bool  # proc with a last param `args`
    defined_at: Any
    called: str  # how its usage line starts: the name as one word (`{a b}`), or `apply lambdaExpr`

    def __init__(self, name: str, params: list[tuple[str, str | None]], body: Any, kind: str = "macro",
                 variadic: bool = False, defined_at: Any = None, called: str | None = None) -> None:
        self.name = name
        self.params = params
        self.body = body
        self.kind = kind
        self.variadic = variadic
        self.defined_at = defined_at
        self.called = called if called is not None else quote_element(name)

    def usage_line(self) -> str:
        words = [self.called]
        for pname, default in self.params:
            words.append(f"?{pname}?" if default is not None or self.kind == "macro" else pname)
        if self.variadic:
            words.append("?arg ...?")
        if self.kind == "macro" and not self.params:
            words.append("?arg ...?")
        return " ".join(words)



def parse_params(spec: str) -> tuple[list[tuple[str, str | None]], bool]:
    """A proc's (or lambda's) parameter list: (name, default or None) pairs, and whether the
    last one is `args`, which takes the remaining words. Refused as Tcl refuses them: a
    parameter with no name, more than a name and a default, an array element or a `::` name."""
    params: list[tuple[str, str | None]] = []
    variadic = False
    items = split_list(spec)
    for i, item in enumerate(items):
        parts = split_list(item)
        if not parts:
            raise ScriptError("argument with no name")
        if len(parts) > 2:
            raise ScriptError(f'too many fields in argument specifier "{item}"')
        if "::" in parts[0]:
            raise ScriptError(f'formal parameter "{parts[0]}" is not a simple name')
        if parts[0].endswith(")") and "(" in parts[0]:
            raise ScriptError(f'formal parameter "{parts[0]}" is an array element')
        if parts[0] == "args" and i == len(items) - 1 and len(parts) == 1:
            variadic = True
            continue
        params.append((parts[0], parts[1] if len(parts) > 1 else None))
    return params, variadic
