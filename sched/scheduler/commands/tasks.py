"""Task definitions: the `task NAME ... end` block, its directives, and their read-time checks.

    task NAME            defines a task, or modifies it if it exists
      command WORD...    host LOCAL|NONE|HOSTNAME ?-required?    periods ?-poll S? ...
      nmax N   npending N   trange ...   active on|off   priority N   stdout ...   stderr ...
      task.exec ... end            task.exit SELECTOR ... end
    end

A task block runs its directives against a copy of the task's definition (a TaskSpec, from
psched.scheduler.taskspec) and hands the result to the scheduler only when the whole block succeeded, so a bad directive
never leaves a task half changed. `check_script` runs when a script is read, before any of it
runs: a directive outside a task, an unknown directive, a malformed constant argument or an
unknown selector is refused with its file, line and column.
"""

from __future__ import annotations

from typing import Any, Callable

from ..attach import scheduler_of
from ..rounds import RoundsConfig, RoundsError, check_fits
from ...lang.errors import Pos, SchedError, TaskError
from ...lang.interp import READ_CHECKS
from ...lang.nodes import Block, Command, Script
from ...lang.registry import BUILTINS
from ..taskspec import (ARITY, DEFINING_KEY, DIRECTIVES, DRAFT_KEY, SITE_KEY, TASK_BLOCKS, ArgError, Defining,
                       Directive, TaskSpec, check_arity, command_words, host_noskew, host_rule, parse_selector)

__all__ = ["check_script"]


# --- the commands ------------------------------------------------------------------------------


def _where_from(interp: Any, err: ArgError) -> TaskError:
    words = interp.cmd_words
    pos = words[err.index].pos if err.index is not None and err.index < len(words) else None
    return TaskError(err.message, pos=pos)


def _directive_command(name: str, directive: Directive) -> Callable:
    def run(interp: Any, argv: list[str]) -> str:
        args = argv[1:]
        try:
            check_arity(name, args)
            defining = interp.extensions.get(DEFINING_KEY)
            if defining is not None:
                directive.apply(defining.spec, args, defining)
                return ""
            draft = interp.extensions.get(DRAFT_KEY)
            if draft is not None and directive.in_exec:
                if name == "command":
                    draft.argv = command_words(args)
                else:
                    words, noskew = host_noskew(args)
                    draft.host, draft.host_required = host_rule(words)
                    draft.noskew = draft.noskew or noskew  # the task's -noskew holds
                return ""
        except ArgError as err:
            raise _where_from(interp, err) from None
        raise TaskError(_misplaced(name, draft is not None))

    return run


def _misplaced(name: str, in_exec: bool) -> str:
    if in_exec:
        return f"`{name}` cannot change a job in task.exec: only command and host can"
    return f"`{name}` is a task directive: it belongs inside a `task NAME` ... `end` block"


for _name, _directive in DIRECTIVES.items():
    BUILTINS.command(_directive.usage, _directive.help)(_directive_command(_name, _directive))
    # the usage lines hold alternatives (`PATH | -var NAME`): the arity comes from ARITY
    _cdef = BUILTINS.commands[_name]
    _cdef.min_args, _cdef.max_args = ARITY[_name][0], ARITY[_name][1] or (1 << 30)


def _task_name(name: str) -> str:
    if not name or name.isdigit() or any(c.isspace() for c in name):
        raise TaskError(f"bad task name '{name}': a task name is one word and not a number (numbers are job ids)")
    return name


@BUILTINS.block("task name", "define a task (or change one): directives, task.exec and task.exit macros, then `end`")
def block_task(interp: Any, node: Block) -> str:
    name = interp.extensions.get(SITE_KEY, "") + _task_name(interp.subst_word(node.header.words[1]))
    sched = scheduler_of(interp)
    staging = sched.staging  # a reload reading its files (psched.scheduler.reload): the block is staged
    existing = sched.tasks.get(name) if staging is None else None
    if staging is not None:
        spec = staging.spec_to_change(name, node.pos)
    else:
        spec = existing.spec.copy() if existing is not None else TaskSpec(name, defined_at=node.pos)
    if existing is not None and existing.deleting:
        raise TaskError(f"task {name} is being deleted (its last jobs are still out); wait for them, then define it again")
    saved = interp.extensions.get(DEFINING_KEY)
    interp.extensions[DEFINING_KEY] = Defining(spec)
    try:
        interp.run_script(node.body)
    finally:
        interp.extensions[DEFINING_KEY] = saved
    if spec.rounds is not None:
        try:
            check_fits(RoundsConfig(spec.rounds, spec.hosts))
        except RoundsError as err:
            raise TaskError(f"task {name}: {err.message}", pos=node.pos) from None
    if staging is not None:
        staging.stage(spec)
    else:
        sched.define(spec)
    return ""


@BUILTINS.block("task.exec", "inside a task: a macro run before each job is made ($task, $job_count); `skip` makes no job")
def block_task_exec(interp: Any, node: Block) -> str:
    _defining(interp, "task.exec").spec.exec_macro = node.body
    return ""


@BUILTINS.block("task.exit selector", "inside a task: a macro run when a job ends this way (exit status N, timeout, crash, down, pending, killed, default)")
def block_task_exit(interp: Any, node: Block) -> str:
    defining = _defining(interp, "task.exit")
    try:
        selector = parse_selector(interp.subst_word(node.header.words[1]))
    except ArgError as err:
        raise TaskError(err.message, pos=node.header.words[1].pos) from None
    defining.spec.exit_macros[selector] = node.body
    return ""


def _defining(interp: Any, block: str) -> Defining:
    """The task being defined, for a block that belongs inside one (TASK_BLOCKS)."""
    defining = interp.extensions.get(DEFINING_KEY)
    if defining is None:
        raise TaskError(_outside_task(block))
    return defining


def _outside_task(block: str) -> str:
    return f"{block} belongs inside a `task NAME` block"


# --- the read-time check -----------------------------------------------------------------------


def check_script(script: Script) -> None:
    """Refuse misplaced and malformed directives before anything runs.

    Arguments that need substitution are checked when they run instead.
    """
    _check_commands(script.commands, context="top")


def _check_commands(commands: list, context: str, task: str = "") -> None:
    for node in commands:
        if isinstance(node, Block):
            _check_block(node, context, task)
        else:
            _check_command(node, context, task)


def _check_block(node: Block, context: str, task: str) -> None:
    name = node.name
    header = node.header
    if name == "task":
        if context != "top" and context != "body":
            pass  # a task defined inside a macro or loop is fine
        if context == "task":
            raise _located(f"a task block cannot be inside task `{task}`: close it with `end` first", header.pos, header)
        word = header.words[1]
        _check_commands(node.body.commands, "task", word.const or "?")
        return
    if name in TASK_BLOCKS:
        if context != "task":
            raise _located(_outside_task(name), header.pos, header)
        if name == "task.exit":
            word = header.words[1]
            if word.const is not None:
                try:
                    parse_selector(word.const)
                except ArgError as err:
                    raise _located(err.message, word.pos, header) from None
        _check_commands(node.body.commands, "exec" if name == "task.exec" else "exit", task)
        return
    if context == "task":
        raise _located(_unknown_directive(name, task), header.pos, header)
    _check_commands(node.body.commands, context if context in ("exec", "exit") else "body", task)
    for clause in node.clauses:
        _check_commands(clause.body.commands, context if context in ("exec", "exit") else "body", task)


def _unknown_directive(name: str, task: str) -> str:
    valid = ", ".join(list(DIRECTIVES) + list(TASK_BLOCKS))
    return f"unknown directive `{name}` in task `{task}`; valid here: {valid}"


def _check_command(cmd: Command, context: str, task: str) -> None:
    name = cmd.words[0].const
    if context == "task":
        if name in TASK_BLOCKS:  # (`task.exit default {...}`, Tcl's habit: say how it is written)
            usage = BUILTINS.commands[name].usage.text
            raise _located(f'"{name}" opens a block: write "{usage}" on a line of its own, then the body, '
                           f'then "end"', cmd.pos, cmd)
        if name not in DIRECTIVES:
            raise _located(_unknown_directive(name or "?", task), cmd.pos, cmd)
        args = [w.const for w in cmd.words[1:]]
        try:
            check_arity(name, [a or "" for a in args])
            if all(a is not None for a in args):
                DIRECTIVES[name].apply(TaskSpec(task), args, Defining(TaskSpec(task)))  # type: ignore[arg-type]
        except ArgError as err:
            pos = cmd.words[err.index].pos if err.index is not None and err.index < len(cmd.words) else cmd.pos
            raise _located(err.message, pos, cmd) from None
        return
    if name in DIRECTIVES:
        if context == "exec" and DIRECTIVES[name].in_exec:
            return
        if context in ("top", "body"):
            raise _located(_misplaced(name, False), cmd.pos, cmd)
        if context == "exit":
            what = "use it in task.exec" if DIRECTIVES[name].in_exec else "it belongs in the task block itself"
            raise _located(f"`{name}` in task.exit has no job to change (it has ended); {what}", cmd.pos, cmd)
        raise _located(_misplaced(name, True), cmd.pos, cmd)


def _located(message: str, pos: Pos, cmd: Command) -> SchedError:
    err = TaskError(message, pos=pos)
    err.source_line = cmd.source.line(pos.line)
    return err


READ_CHECKS.append(check_script)
