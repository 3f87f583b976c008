"""`sync NAME ... end`, `target` and `syncrun`: synchronized runs from the sched language.

    sync fio4k -minhosts 3 -timeout 5m ?-log DIR?
      target node1 ./fio.sh 4k
      target -timeout 30s node2 ./fio.sh 4k
    end
    syncrun fio4k ?-json? ?-quiet?

The block defines (or redefines) a run and keeps it in the interpreter's table
(psched.scheduler.syncdefs); `target` lines are its only content. `syncrun` asks pcontrol
to run it now (psched.scheduler.syncjobs), prints the table of targets (with their output unless -quiet) and
the skew line, writes the block's -log file, and returns the result as a dict (-json: as
JSON). A failed verdict is an error `catch` can catch; the result is then in the global
variable sync_result all the same. A task runs a sync with the `sync NAME` directive.

Malformed constant words (a duration like `5x`, a -minhosts larger than the targets, a
target with no command, a `target` outside a block) are refused when the script is read,
with file, line and column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


from ...lang.errors import Pos, SchedError, ScriptError
from ...lang.interp import READ_CHECKS
from ...lang.nodes import Block, Command, Script, Word
from ...lang.registry import BUILTINS
from ..attach import controller_of, scheduler_of
from ..eventloop import run_until
from ..syncdefs import DurationError, SyncDef, SyncTargetDef, parse_duration, parse_minhosts, result_dict, sync_defs
from ..syncjobs import SyncFailed, log_run, run_sync
from ..taskspec import ArgError

__all__ = ["check_sync_blocks"]

BLOCK_USAGE = "sync name ?-minhosts N|all? ?-timeout DURATION? ?-log DIR?"
TARGET_USAGE = "target ?-timeout DURATION? host command ?arg ...?"
_BLOCK_OPTIONS = ("-minhosts", "-timeout", "-log")


@dataclass
class _Header:
    name: str
    minhosts: int | None = None
    timeout: float | None = None
    log_dir: str | None = None


def _parse_header(words: list[str]) -> _Header:
    """The block's header words after `sync` (index 1 = the name)."""
    if not words or not words[0] or words[0].startswith("-"):
        raise ArgError(f'a sync block needs a name: "{BLOCK_USAGE}"', 1)
    header = _Header(words[0])
    rest = words[1:]
    i = 0
    while i < len(rest):
        option = rest[i]
        index = i + 2
        if option not in _BLOCK_OPTIONS:
            raise ArgError(f"unknown option '{option}' of sync {header.name}: expected "
                             + ", ".join(_BLOCK_OPTIONS), index)
        if i + 1 >= len(rest):
            raise ArgError(f"{option} needs a value", index)
        value = rest[i + 1]
        try:
            if option == "-minhosts":
                header.minhosts = parse_minhosts(value)
            elif option == "-timeout":
                header.timeout = parse_duration(value)
            else:
                header.log_dir = value
        except DurationError as err:
            raise ArgError(str(err), index + 1) from None
        i += 2
    return header


def _parse_target(words: list[str], line: int | None) -> SyncTargetDef:
    """A `target` line's words after `target` (index 1 = the first)."""
    timeout, timeout_set, i = None, False, 0
    if words and words[0] == "-timeout":
        if len(words) < 2:
            raise ArgError("-timeout needs a value", 1)
        try:
            timeout = parse_duration(words[1])
        except DurationError as err:
            raise ArgError(str(err), 2) from None
        timeout_set, i = True, 2
    elif words and words[0].startswith("-") and len(words[0]) > 1:
        raise ArgError(f"unknown option '{words[0]}' of target: expected -timeout", 1)
    if len(words) <= i:
        raise ArgError(f'target needs a host and a command: "{TARGET_USAGE}"', None)
    host = words[i]
    if not host or any(c.isspace() for c in host):
        raise ArgError(f"bad host name '{host}'", i + 1)
    if len(words) <= i + 1:
        raise ArgError(f"target {host} has no command: \"{TARGET_USAGE}\"", i + 1)
    return SyncTargetDef(host, tuple(words[i + 1:]), timeout, timeout_set, line)


def _check_minhosts(sync: SyncDef) -> None:
    if sync.minhosts is not None and sync.minhosts > len(sync.targets):
        raise ArgError(f"sync {sync.name}: -minhosts {sync.minhosts} is more than its "
                         f"{len(sync.targets)} target(s)", None)


# -- the commands -----------------------------------------------------------------------------------


def _at(words: list[Word], err: ArgError, fallback: Pos) -> ScriptError:
    pos = words[err.index].pos if err.index is not None and err.index < len(words) else fallback
    return ScriptError(err.message, pos=pos)


@BUILTINS.block(BLOCK_USAGE, "define a synchronized run: `target` lines, then `end` (run it with `syncrun NAME`)")
def block_sync(interp: Any, node: Block) -> str:
    words = node.header.words
    values = [interp.subst_word(w) for w in words[1:]]
    try:
        header = _parse_header(values)
    except ArgError as err:
        raise _at(words, err, node.pos) from None
    sync = SyncDef(header.name, minhosts=header.minhosts, timeout=header.timeout, log_dir=header.log_dir,
                   where=f"{interp.current_file}:{node.pos.line}")
    saved = interp.extensions.get("sync.defining")
    interp.extensions["sync.defining"] = sync
    try:
        interp.run_script(node.body)
    finally:
        interp.extensions["sync.defining"] = saved
    if not sync.targets:
        raise ScriptError(f"sync {sync.name} has no targets (give it `{TARGET_USAGE}` lines)", pos=node.pos)
    try:
        _check_minhosts(sync)
    except ArgError as err:
        raise ScriptError(err.message, pos=node.pos) from None
    sync_defs(interp)[sync.name] = sync
    return ""


@BUILTINS.command(TARGET_USAGE, "inside a sync block: run COMMAND on HOST (a pcontrol host); a host may appear more than once")
def cmd_target(interp: Any, argv: list[str]) -> str:
    sync = interp.extensions.get("sync.defining")
    words = interp.cmd_words
    if sync is None:
        raise ScriptError("`target` belongs inside a `sync NAME` ... `end` block")
    line = words[0].pos.line if words else None
    try:
        sync.targets.append(_parse_target(argv[1:], line))
    except ArgError as err:
        raise _at(words, err, words[0].pos) from None
    return ""


@BUILTINS.command("syncrun name ?-json? ?-quiet?",
                  "run a sync block now: prints its targets and start skew, returns the result as a dict "
                  "(-json: JSON); a failed verdict is an error (the result is in $::sync_result too)")
def cmd_syncrun(interp: Any, argv: list[str]) -> str:
    name, flags = argv[1], argv[2:]
    unknown = [f for f in flags if f not in ("-json", "-quiet")]
    if unknown:
        raise ScriptError(f"syncrun: unknown option '{unknown[0]}': expected -json or -quiet")
    sync = sync_defs(interp).get(name)
    if sync is None:
        known = ", ".join(sorted(sync_defs(interp))) or "none are defined"
        raise ScriptError(f'no sync block named "{name}" (sync blocks: {known})')
    link = controller_of(scheduler_of(interp))
    try:
        result = run_until(run_sync(link, sync), "syncrun")
    except SyncFailed as exc:
        raise ScriptError(str(exc)) from None
    from pcontrol.syncspec import result_text  # with the first sync run (start-up, issue 13)

    interp.write(result_text(result, output="-quiet" not in flags) + "\n")
    try:
        path = log_run(sync, result)
    except OSError as exc:
        raise ScriptError(f"sync {name}: cannot write its log in {sync.log_dir}: {exc.strerror or exc}") from None
    if path:
        interp.write(f"log: {path}\n")
    value = json.dumps(result, sort_keys=True) if "-json" in flags else result_dict(result)
    interp.set_var("::sync_result", result_dict(result))
    if result["verdict"] != "success":
        raise ScriptError(f"sync {name} failed: {result['reason']}")
    return value


# -- the read-time check ----------------------------------------------------------------------------


def check_sync_blocks(script: Script) -> None:
    """Refuse malformed sync blocks and stray `target` lines before anything runs."""
    _walk(script.commands, in_sync=False)


def _walk(commands: list, in_sync: bool) -> None:
    for node in commands:
        if isinstance(node, Block):
            if node.name == "sync":
                if in_sync:
                    raise _located("a sync block cannot be inside another sync block", node.pos, node.header)
                _check_block(node)
            else:
                if in_sync:
                    raise _located(f"only `target` lines belong in a sync block, not `{node.name}`", node.pos, node.header)
                _walk(node.body.commands, False)
                for clause in node.clauses:
                    _walk(clause.body.commands, False)
        elif isinstance(node, Command) and node.words and node.words[0].const == "target" and not in_sync:
            raise _located("`target` belongs inside a `sync NAME` ... `end` block", node.pos, node)


def _check_block(node: Block) -> None:
    header = node.header
    consts = [w.const for w in header.words[1:]]
    sync: SyncDef | None = None
    if all(c is not None for c in consts):
        try:
            parsed = _parse_header([c for c in consts if c is not None])
        except ArgError as err:
            raise _located_word(err, header.words, header) from None
        sync = SyncDef(parsed.name, minhosts=parsed.minhosts)
    for cmd in node.body.commands:
        if isinstance(cmd, Block):
            raise _located(f"only `target` lines belong in a sync block, not `{cmd.name}`", cmd.pos, cmd.header)
        name = cmd.words[0].const
        if name != "target":
            raise _located(f"only `target` lines belong in a sync block, not `{name or '?'}`", cmd.pos, cmd)
        args = [w.const for w in cmd.words[1:]]
        if all(a is not None for a in args):
            try:
                target = _parse_target([a for a in args if a is not None], cmd.pos.line)
            except ArgError as err:
                raise _located_word(err, cmd.words, cmd) from None
            if sync is not None:
                sync.targets.append(target)
        else:
            sync = None        # a substituted target: count them when the block runs
    if sync is not None:
        if not sync.targets:
            raise _located(f"sync {sync.name} has no targets (give it `{TARGET_USAGE}` lines)", node.pos, header)
        try:
            _check_minhosts(sync)
        except ArgError as err:
            raise _located(err.message, node.pos, header) from None


def _located_word(err: ArgError, words: list[Word], cmd: Command) -> SchedError:
    pos = words[err.index].pos if err.index is not None and err.index < len(words) else cmd.pos
    return _located(err.message, pos, cmd)


def _located(message: str, pos: Pos, cmd: Command) -> SchedError:
    err = ScriptError(message, pos=pos)
    err.source_line = cmd.source.line(pos.line)
    return err


READ_CHECKS.append(check_sync_blocks)
