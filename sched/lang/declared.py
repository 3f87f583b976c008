"""Commands declared ahead of their module, so that a run that never calls them never imports it
(issue 13: `sched -c 'echo hi'` loads no scheduler).

    declare(BUILTINS, "psched.scheduler.commands", DECLARED)

Each entry (a Declared: the usage line, help, block header and arity of the command's own
declaration) becomes a DeclaredCommand in the registry. It answers `help`, `info commands`,
completion and the arity check exactly as the real command does; its first call imports the
module, whose declarations take the stubs' place (the module calls `undeclare` before it
declares its commands), and runs the real command. An interpreter made before the load swaps
its stubs for the real commands at that first call, so a renamed stub stays renamed.

The module's read-time checks (psched.lang.interp.READ_CHECKS) are declared too: a script that
names one of the module's commands (in a command or a block header, at any depth) loads the
module when it is read, and its checks run as they always did; other scripts skip them, having
nothing they could refuse. The module hands its checks over with `declared_checks`.

The entries are generated from the real declarations and checked against them, so they cannot
drift (psched.scheduler.commandtable, tests/test_startup.py).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable

from .interp import READ_CHECKS
from .nodes import Script
from .record import Frozen
from .registry import CommandDef, Registry, parse_usage

__all__ = ["Declared", "DeclaredCommand", "declare", "undeclare", "declared_checks"]

_CHECKS: dict[str, list[Callable[[Script], None]]] = {}
"""A loaded module's read-time checks, by module (handed over with `declared_checks`)."""
_STAND_INS: dict[str, Callable[[Script], None]] = {}
"""The read-time check standing for a module's checks until it is loaded, by module."""


class Declared(Frozen):
    """What a command's declaration says about it, without its functions."""

    __slots__ = _fields = ("name", "usage", "help", "min_args", "max_args", "has_fn", "block_usage", "block_help")
    name: str
    usage: str
    help: str
    min_args: int
    max_args: int
    has_fn: bool
    block_usage: str | None
    """The block header line, if the command has a block form."""
    block_help: str

    def __init__(self, name: str, usage: str, help: str, min_args: int, max_args: int, has_fn: bool = True,
                 block_usage: str | None = None, block_help: str = "") -> None:
        put = object.__setattr__
        put(self, "name", name)
        put(self, "usage", usage)
        put(self, "help", help)
        put(self, "min_args", min_args)
        put(self, "max_args", max_args)
        put(self, "has_fn", has_fn)
        put(self, "block_usage", block_usage)
        put(self, "block_help", block_help)

    @classmethod
    def of(cls, cdef: CommandDef) -> "Declared":
        return cls(cdef.name, cdef.usage.text, cdef.help, cdef.min_args, cdef.max_args, cdef.fn is not None,
                   cdef.block_usage.text if cdef.block is not None and cdef.block_usage is not None else None,
                   cdef.block_help if cdef.block is not None else "")


class DeclaredCommand(CommandDef):
    """A stub standing for a command of `module` until that module is loaded."""

    module: str = ""


def declare(registry: Registry, module: str, entries: Iterable[Declared]) -> None:
    """Add a stub for each entry, loading `module` at the first call of any of them."""
    entries = tuple(entries)
    for entry in entries:
        registry.add(_stub(registry, module, entry))
    names = frozenset(e.name for e in entries)

    def check(script: Script) -> None:
        if _names_any(script, names):
            importlib.import_module(module)
            for real in _CHECKS.get(module, ()):
                real(script)

    _STAND_INS[module] = check
    READ_CHECKS.append(check)


def undeclare(registry: Registry, module: str) -> None:
    """Drop the stubs of `module` (it is being loaded and declares the real commands), and its
    stand-in read-time check (interpreters made from now on get the real ones)."""
    for name, cdef in list(registry.commands.items()):
        if isinstance(cdef, DeclaredCommand) and cdef.module == module:
            del registry.commands[name]
    stand_in = _STAND_INS.get(module)
    if stand_in in READ_CHECKS:
        READ_CHECKS.remove(stand_in)


def declared_checks(module: str, checks: list[Callable[[Script], None]]) -> None:
    """`module`'s read-time checks, for interpreters made before it was loaded."""
    _CHECKS[module] = list(checks)


def _names_any(script: Script, names: frozenset[str]) -> bool:
    """Whether a command or block header of `script` (at any depth) is named in `names`."""
    return any(command.words[0].const in names for command in script.walk())


def _stub(registry: Registry, module: str, entry: Declared) -> DeclaredCommand:
    name = entry.name

    def call(interp: Any, argv: list[str]) -> str:
        return _load(interp, registry, module, name).fn(interp, argv)

    def block(interp: Any, node: Any) -> str:
        return _load(interp, registry, module, name).block(interp, node)

    cdef = DeclaredCommand(name, parse_usage(entry.usage), entry.help, fn=call if entry.has_fn else None,
                           block=block if entry.block_usage is not None else None)
    cdef.min_args, cdef.max_args = entry.min_args, entry.max_args
    if entry.block_usage is not None:
        cdef.block_usage, cdef.block_help = parse_usage(entry.block_usage), entry.block_help
    cdef.module = module
    return cdef


def _load(interp: Any, registry: Registry, module: str, name: str) -> CommandDef:
    """Import `module` (once), give `interp` its real commands, and return the one named."""
    importlib.import_module(module)
    for key, cdef in list(interp.commands.items()):
        if isinstance(cdef, DeclaredCommand) and cdef.module == module:
            interp.commands[key] = registry.commands[cdef.name]
    return registry.commands[name]
