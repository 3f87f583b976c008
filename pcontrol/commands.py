"""Command tables: each command is declared once, with its usage line, and everything else
(argument binding, "wrong # args" errors, `help`, completion, -json) comes from that line.

A usage line is Tcl-style::

    host add NAME ?-slots N? ?-connect COMMAND?
    job ?-host H? ?-required? ?-timeout S? ?-env K=V? -- ARGV...
    harvest ID... ?-owner ID?

Words: `NAME` a required positional, `?NAME?` an optional one, `NAME...` one or more,
`?NAME...?` zero or more, `?-opt META?` an option taking a value, `?-flag?` a flag, `--`
marks that the following variadic takes every word literally (even ones starting with "-").
The metavariable decides the value's type (METAVAR_TYPES); a `K=V` option may repeat and
collects a dict. Command paths form ensembles (`host add`, `check job`) looked up with
unique-prefix matching.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from .errors import UnknownCommandError, UsageError


@dataclass
class CommandResult:
    """What a handler returns: human text and JSON-able data."""

    text: str = ""
    data: Any = None


Handler = Callable[[Any, dict[str, Any]], Union[CommandResult, Awaitable[CommandResult]]]


# -- value types by metavariable -------------------------------------------------------------

INT_LIMIT = 2**63 - 1
"""The largest whole number a command takes (what the journal, SQLite, can keep: a larger job
id or size would fail every journal write after it)."""
MAX_SLOTS = 1_000_000
"""More slots than any host (or Slurm cluster) can use."""
MAX_SECONDS = 1e10
"""About 317 years: a duration longer than that is a mistake (use none for no limit)."""
MAX_EPOCH = 253402300799.0
"""9999-12-31 23:59:59 UTC: the last time the standard library can print."""


def _parse_int(word: str, what: str) -> int:
    try:
        value = int(word, 10)
    except ValueError:
        raise UsageError(f'expected an integer for {what} but got "{word}"') from None
    if abs(value) > INT_LIMIT:
        raise UsageError(f'{what} is out of range (at most {INT_LIMIT}), got "{word}"')
    return value


def _parse_count(word: str, what: str) -> int:
    value = _parse_int(word, what)
    if value < 1:
        raise UsageError(f'{what} must be at least 1, got {value}')
    if value > MAX_SLOTS:
        raise UsageError(f'{what} must be at most {MAX_SLOTS}, got {value}')
    return value


def _parse_float(word: str, what: str, kind: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise UsageError(f'expected {kind} for {what} but got "{word}"') from None


def _parse_seconds(word: str, what: str) -> float:
    value = _parse_float(word, what, "a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f'{what} must be a finite number of seconds >= 0, got "{word}"')
    if value > MAX_SECONDS:
        raise UsageError(f'{what} must be at most {MAX_SECONDS:g} seconds, got "{word}"')
    return value


def _parse_epoch(word: str, what: str) -> float:
    value = _parse_float(word, what, "a time in seconds since the epoch")
    if not 0 <= value <= MAX_EPOCH:
        raise UsageError(f'{what} must be a time between 1970 and the year 9999 in seconds since the epoch, '
                         f'got "{word}"')
    return value


def _parse_size(word: str, what: str) -> int:
    value = _parse_int(word, what)
    if value < 0:
        raise UsageError(f"{what} must be at least 0, got {value}")
    return value


def _parse_pair(word: str, what: str) -> tuple[str, str]:
    key, sep, value = word.partition("=")
    if not sep or not key:
        raise UsageError(f'expected KEY=VALUE for {what} but got "{word}"')
    return key, value


#: Metavariable -> converter(word, what). Others are plain strings.
METAVAR_TYPES: dict[str, Callable[[str, str], Any]] = {
    "N": _parse_int,
    "SLOTS": _parse_count,
    "COUNT": _parse_size,
    "S": _parse_seconds,
    "EPOCH": _parse_epoch,
    "BYTES": _parse_size,
    "K=V": _parse_pair,
}
#: Metavariables whose option may be given several times (values are collected).
REPEATABLE = {"K=V"}


# -- usage lines -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    name: str                 # without the dash
    metavar: str | None       # None for a flag

    @property
    def repeatable(self) -> bool:
        return self.metavar in REPEATABLE


@dataclass(frozen=True)
class Param:
    metavar: str
    optional: bool
    variadic: bool

    @property
    def key(self) -> str:
        return self.metavar.lower().replace("-", "_")


@dataclass(frozen=True)
class Usage:
    """A parsed usage line (without the command path)."""

    text: str
    options: tuple[Option, ...]
    params: tuple[Param, ...]
    literal_tail: bool          # "--" seen: the variadic takes words literally

    @classmethod
    def parse(cls, text: str) -> "Usage":
        options: list[Option] = []
        params: list[Param] = []
        literal_tail = False
        for token in _usage_tokens(text):
            optional = token.startswith("?")
            body = token[1:-1] if optional else token
            parts = body.split()
            if body == "--":
                literal_tail = True
            elif parts[0].startswith("-"):
                if not optional or len(parts) > 2:
                    raise ValueError(f"bad option in usage {text!r}: {token!r}")
                options.append(Option(parts[0][1:], parts[1] if len(parts) == 2 else None))
            else:
                if len(parts) != 1:
                    raise ValueError(f"bad parameter in usage {text!r}: {token!r}")
                variadic = body.endswith("...")
                params.append(Param(body[:-3] if variadic else body, optional, variadic))
        if any(p.variadic for p in params[:-1]):
            raise ValueError(f"only the last parameter may be variadic: {text!r}")
        return cls(text, tuple(options), tuple(params), literal_tail)

    @functools.cached_property
    def _by_name(self) -> dict[str, Option]:
        return {o.name: o for o in self.options}

    @functools.cached_property
    def _unset(self) -> dict[str, Any]:
        """Each option's value when it is not given (a repeatable one's is a fresh dict)."""
        return {o.name: (False if o.metavar is None else None) for o in self.options}

    @functools.cached_property
    def _repeatable(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options if o.repeatable)

    def option_named(self, word: str, path: str) -> Option:
        """Find an option by exact name or unique prefix (word includes the dash)."""
        name = word[1:]
        exact = self._by_name.get(name)
        if exact is not None:
            return exact
        matches = [o for o in self.options if o.name.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        names = one_of(["-" + o.name for o in (matches or self.options)])
        if not self.options:
            raise UsageError(f'"{path}" takes no options, got "{word}"')
        kind = "ambiguous" if matches else "unknown"
        raise UsageError(f'{kind} option "{word}" for "{path}": should be {names}')

    def bind(self, words: list[str], path: str) -> dict[str, Any]:
        """Bind argument words to names; UsageError with the usage line when they do not fit."""
        # What each usage line needs is worked out once (`job` has 18 options, and a scheduler
        # sends thousands of jobs: issue 13); the words are walked once.
        args = dict(self._unset)
        repeatable = self._repeatable
        for name in repeatable:
            args[name] = {}
        positional: list[str] = []
        literal_tail, has_options, by_name = self.literal_tail, bool(self.options), self._by_name
        count = len(words)
        index = 0
        while index < count:
            word = words[index]
            index += 1
            if word == "--" and literal_tail:
                positional.extend(words[index:])
                break
            if has_options and _looks_like_option(word):
                option = by_name.get(word[1:]) or self.option_named(word, path)
                name, metavar = option.name, option.metavar
                if metavar is None:
                    args[name] = True
                    continue
                if index >= count:
                    raise UsageError(f'option "-{name}" of "{path}" needs a value ({metavar})')
                converter = METAVAR_TYPES.get(metavar)
                value = converter(words[index], f"-{name}") if converter else words[index]
                index += 1
                if name in repeatable:
                    key, val = value
                    args[name][key] = val
                else:
                    args[name] = value
            else:
                positional.append(word)
                if literal_tail and len(positional) >= self._fixed_count:
                    positional.extend(words[index:])
                    break
        self._bind_positional(positional, args, path)
        return args

    @functools.cached_property
    def _fixed_count(self) -> int:
        return sum(1 for p in self.params if not p.variadic)

    def _bind_positional(self, words: list[str], args: dict[str, Any], path: str) -> None:
        required = sum(1 for p in self.params if not p.optional)
        variadic = bool(self.params) and self.params[-1].variadic
        if len(words) < required or (not variadic and len(words) > len(self.params)):
            line = f"{path} {self.text}".rstrip()
            raise UsageError(f'wrong # args: should be "{line}"')
        remaining = list(words)
        optional_budget = len(words) - required
        for param in self.params:
            if param.variadic:
                args[param.key] = [self._convert(param.metavar, w, param.metavar)
                                   for w in remaining]
                remaining = []
            elif param.optional:
                if optional_budget > 0 and remaining:
                    args[param.key] = self._convert(param.metavar, remaining.pop(0),
                                                    param.metavar)
                    optional_budget -= 1
                else:
                    args[param.key] = None
            else:
                args[param.key] = self._convert(param.metavar, remaining.pop(0), param.metavar)

    @staticmethod
    def _convert(metavar: str, word: str, what: str) -> Any:
        converter = METAVAR_TYPES.get(metavar)
        return converter(word, what) if converter else word


def _looks_like_option(word: str) -> bool:
    if len(word) < 2 or word[0] != "-":
        return False
    if word[1] in _OPTION_LETTERS:
        return True            # no number starts so (float() takes only inf, infinity, nan)
    try:
        float(word)            # a negative number is a value, not an option
        return False
    except ValueError:
        return True


_OPTION_LETTERS = frozenset("abcdefghjklmopqrstuvwxyzABCDEFGHJKLMOPQRSTUVWXYZ")
"""ASCII letters that begin no word float() reads, after a minus sign (not i, n: -inf, -nan)."""


def _usage_tokens(text: str) -> list[str]:
    """Split a usage line into words, keeping `?-opt META?` groups together."""
    tokens: list[str] = []
    group: list[str] | None = None
    for word in text.split():
        if group is not None:
            group.append(word)
            if word.endswith("?"):
                tokens.append(" ".join(group))
                group = None
        elif word.startswith("?") and not (len(word) > 1 and word.endswith("?")):
            group = [word]
        else:
            tokens.append(word)
    if group is not None:
        raise ValueError(f"unclosed ? group in usage {text!r}")
    return tokens


def one_of(names: Iterable[str]) -> str:
    """'a, b, or c' -- for 'should be one of' messages."""
    items = sorted(names)
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} or {items[1]}"
    return ", ".join(items[:-1]) + ", or " + items[-1]


# -- commands and ensembles ------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    path: str                   # "host add"
    usage: Usage
    handler: Handler
    summary: str

    @property
    def usage_line(self) -> str:
        return f"{self.path} {self.usage.text}".rstrip()


@dataclass
class Ensemble:
    path: str                                   # "" for the root, "host" for host ...
    children: dict[str, Union[Command, "Ensemble"]] = field(default_factory=dict)

    def lookup(self, word: str) -> Union[Command, "Ensemble"]:
        if word in self.children:
            return self.children[word]
        matches = [name for name in self.children if name.startswith(word)]
        if len(matches) == 1:
            return self.children[matches[0]]
        what = "command" if not self.path else "subcommand"
        where = "" if not self.path else f' of "{self.path}"'
        kind = "ambiguous" if matches else "unknown"
        raise UnknownCommandError(f'{kind} {what} "{word}"{where}: should be one of '
                                  f'{one_of(matches or self.children)}')

    def commands(self) -> Iterable[Command]:
        for child in self.children.values():
            if isinstance(child, Command):
                yield child
            else:
                yield from child.commands()


class CommandTable:
    """The commands of one program, by path; see the module docstring."""

    def __init__(self) -> None:
        self.root = Ensemble("")

    def command(self, path: str, usage: str, summary: str) -> Callable[[Handler], Handler]:
        """Decorator: register `handler` as the command `path` with `usage`."""

        def register(handler: Handler) -> Handler:
            self.add(Command(path, Usage.parse(usage), handler, summary))
            return handler

        return register

    def add(self, command: Command) -> None:
        words = command.path.split()
        node = self.root
        for depth, word in enumerate(words[:-1]):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = Ensemble(" ".join(words[:depth + 1]))
            if not isinstance(child, Ensemble):
                raise ValueError(f"{command.path!r}: {child.path!r} is already a command")
            node = child
        if words[-1] in node.children:
            raise ValueError(f"command {command.path!r} declared twice")
        node.children[words[-1]] = command

    # -- resolution -------------------------------------------------------------------------

    def resolve(self, argv: list[str]) -> tuple[Command, list[str]]:
        """Find the command named by the leading words of argv; return it and the rest."""
        if not argv:
            raise UsageError("empty command")
        node: Union[Command, Ensemble] = self.root
        index = 0
        while isinstance(node, Ensemble):
            if index >= len(argv):
                raise UsageError(f'wrong # args: should be "{node.path} subcommand ?arg ...?"; '
                                 f'subcommands: {one_of(node.children)}')
            node = node.lookup(argv[index])
            index += 1
        return node, argv[index:]

    def bind(self, argv: list[str]) -> tuple[Command, dict[str, Any]]:
        command, rest = self.resolve(argv)
        return command, command.usage.bind(rest, command.path)

    async def run(self, context: Any, argv: list[str]) -> CommandResult:
        """Resolve, bind and run a command; -json turns the text into the data as JSON."""
        command, args = self.bind(argv)
        result = command.handler(context, args)
        if inspect.isawaitable(result):
            result = await result
        if args.get("json") is True:
            result = CommandResult(json.dumps(result.data, indent=2, sort_keys=True), result.data)
        return result

    # -- help and completion ----------------------------------------------------------------

    def help(self, words: list[str]) -> CommandResult:
        """Usage lines of every command, or of those under the given path."""
        node: Union[Command, Ensemble] = self.root
        for word in words:
            if isinstance(node, Command):
                raise UsageError(f'"{node.path}" has no subcommands')
            node = node.lookup(word)
        commands = [node] if isinstance(node, Command) else list(node.commands())
        width = max(len(c.usage_line) for c in commands)
        if width > 60:
            lines = [f"{c.usage_line}\n    {c.summary}" for c in commands]
        else:
            lines = [f"{c.usage_line:<{width}}  {c.summary}" for c in commands]
        data = [{"command": c.path, "usage": c.usage_line, "summary": c.summary}
                for c in commands]
        return CommandResult("\n".join(lines), data)

    def complete(self, words: list[str], prefix: str,
                 values: Callable[[str], Iterable[str]] | None = None) -> list[str]:
        """Candidates for the word being typed (`prefix`) after the complete `words`.

        `values(metavar)` may supply dynamic candidates, e.g. host names for NAME or H.
        """
        node: Union[Command, Ensemble] = self.root
        index = 0
        while isinstance(node, Ensemble):
            if index == len(words):
                return sorted(n for n in node.children if n.startswith(prefix))
            try:
                node = node.lookup(words[index])
            except UnknownCommandError:
                return []
            index += 1
        return _complete_args(node.usage, words[index:], prefix, values)


def _complete_args(usage: Usage, words: list[str], prefix: str,
                   values: Callable[[str], Iterable[str]] | None) -> list[str]:
    # Which slot is being typed: an option's value, an option name, or a positional?
    options = {"-" + o.name: o for o in usage.options}
    if words and words[-1] in options and options[words[-1]].metavar is not None:
        metavar = options[words[-1]].metavar
        return sorted(v for v in (values(metavar) if values else ()) if v.startswith(prefix))
    if prefix.startswith("-"):
        used = set(words)
        return sorted(name for name, o in options.items()
                      if name.startswith(prefix) and (name not in used or o.repeatable))
    count = 0
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in options:
            skip = options[word].metavar is not None
        else:
            count += 1
    params = usage.params
    if not params:
        return []
    param = params[min(count, len(params) - 1)]
    if count >= len(params) and not param.variadic:
        return []
    return sorted(v for v in (values(param.metavar) if values else ()) if v.startswith(prefix))
