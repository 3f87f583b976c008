"""Core commands: variables, control flow, macros and procs, expr, eval, output, help.

Completion codes (`return` options, `error`, `catch`, `try`), levels and `switch` are in
psched.lang.commands.tclcontrol.

Each command is declared once with its usage line (psched.lang.registry); loops and `if` have a
Tcl form (braced bodies) and a block form (header line ... `end`), registered under one name.
"""

from __future__ import annotations

from typing import Callable

from ..args import MAX_STRING, get_int, parse_options
from ..compile import Special, compiles
from ..errors import Break, Continue, ScriptError, Skip
from ..expr import Expr, compile_expr, format_value, parse_number
from ..interp import Interp, script_at, split_var_name, word_origin
from ..nodes import Block, Command, Script
from ..registry import BUILTINS, CommandDef, Macro, parse_params, resolve_subcommand
from ..tcllist import split_list

cmd = BUILTINS.command
block = BUILTINS.block


def _number(value: str) -> int | float:
    number = parse_number(value)
    if number is None or number != number:  # NaN is no number to count with
        raise ScriptError(f'expected number but got "{value}"')
    return number


# --- variables -----------------------------------------------------------------------------------


@cmd("set varName ?value?", "read a variable, or give it a value")
def cmd_set(interp: Interp, argv: list[str]) -> str:
    if len(argv) == 2:
        return interp.get_var(argv[1])
    return interp.set_var(argv[1], argv[2])


def _set_value(interp: Interp, argv: list[str]) -> str:
    return interp.set_var(argv[1], argv[2])


def _get_value(interp: Interp, argv: list[str]) -> str:
    return interp.get_var(argv[1])


@compiles(cmd_set)
def _compiled_set(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """cmd_set with its count of words known."""
    return _set_value if len(command.words) == 3 else _get_value


@cmd("unset ?-nocomplain? ?varName ...?", "delete variables")
def cmd_unset(interp: Interp, argv: list[str]) -> str:
    names = argv[1:]
    nocomplain = bool(names) and names[0] == "-nocomplain"
    if nocomplain:
        names = names[1:]
    for name in names:
        interp.unset_var(name, nocomplain)
    return ""


@cmd("incr varName ?increment?", "add to an integer variable (a missing one counts as 0)")
def cmd_incr(interp: Interp, argv: list[str]) -> str:
    step = get_int(argv[2]) if len(argv) == 3 else 1
    try:
        current = interp.get_var(argv[1])
    except ScriptError:
        if interp.var_exists(argv[1]):  # an array: Tcl says so as it looks the variable up to write it
            raise ScriptError(f'can\'t set "{argv[1]}": variable is array') from None
        base, index = split_var_name(argv[1])
        if index is not None and interp.var_exists(base) and interp.array(base) is None:  # an element of a scalar
            raise
        current = "0"
    return interp.set_var(argv[1], str(get_int(current) + step))


@compiles(cmd_incr)
def _compiled_incr(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """`incr i` and `incr i 2`: a scalar of this frame that holds decimal digits gets the sum in
    its place (what get_var, get_int and set_var do with it); anything else goes to cmd_incr."""
    words = command.words
    name = words[1].const
    if name is None or "(" in name or ":" in name or (len(words) == 3 and words[2].const is None):
        return None
    step = get_int(words[2].const) if len(words) == 3 else 1  # type: ignore[arg-type]

    def incr(interp: Interp, argv: list[str]) -> str:
        vars = interp.frame.vars
        value = vars.get(name)
        if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 64:
            result = vars[name] = str(int(value) + step)
            return result
        return cmd_incr(interp, argv)

    return incr


@cmd("append varName ?value ...?", "add text to the end of a variable")
def cmd_append(interp: Interp, argv: list[str]) -> str:
    if len(argv) == 2:  # nothing to add: Tcl reads the variable, which must exist
        return interp.get_var(argv[1])
    name, piece = argv[1], "".join(argv[2:])
    grow = interp.growing(name)  # grown in place: a loop of appends is linear
    current = grow.text if grow is not None else interp.get_var(name) if interp.var_exists(name) else ""
    if len(current) + len(piece) > MAX_STRING:
        raise ScriptError(f"append: value would be longer than {MAX_STRING} characters")
    if grow is None:  # an array element: extended and set whole
        return interp.set_var(name, current + piece)
    del current  # (grown in place only when nothing else holds the text)
    if piece:
        grow.is_list = False
    return grow.add(piece)


@cmd("global ?varName ...?", "in a proc or macro, use these global variables")
def cmd_global(interp: Interp, argv: list[str]) -> str:
    for name in argv[1:]:
        interp.link_global(name)
    return ""


@cmd("local varName ?value?", "in a macro, make a variable of this call only")
def cmd_local(interp: Interp, argv: list[str]) -> str:
    if interp.frame is interp.globals:
        raise ScriptError("local: only inside a macro or proc")
    interp.declare_local(argv[1], argv[2] if len(argv) == 3 else None)
    return argv[2] if len(argv) == 3 else ""


# --- control flow --------------------------------------------------------------------------------


@cmd("if expr ?then? body ?arg ...?", "run a body when a condition holds: if EXPR ?then? BODY ?elseif EXPR BODY ...? ?else BODY?")
def cmd_if(interp: Interp, argv: list[str]) -> str:
    # Fetch the bodies first: script_of reads the words of the command being called.
    words = interp.cmd_words
    for cond, body in _if_branches(argv, lambda i: interp.script_of(argv, i)):
        if cond is None or interp.condition_arg(argv, cond, words):
            return interp.run_script(body)
    return ""


def _if_branches(argv: list[str], body_at: Callable[[int], Script]) -> list[tuple[int | None, Script]]:
    """The branches of `if`: the index of each condition (None for `else`) and its body."""
    i, n = 1, len(argv)
    branches: list[tuple[int | None, Script]] = []
    while True:
        if i >= n:
            raise ScriptError('wrong # args: no expression after "if" argument')
        cond = i
        i += 1
        if i < n and argv[i] == "then":
            i += 1
        if i >= n:
            raise ScriptError(f'wrong # args: no script following "{argv[cond]}" argument')
        branches.append((cond, body_at(i)))
        i += 1
        if i >= n:
            break
        if argv[i] in ("elseif", "elif"):
            i += 1
            continue
        if argv[i] == "else":
            i += 1
            if i >= n:
                raise ScriptError('wrong # args: no script following "else" argument')
        if i != n - 1:
            raise ScriptError(f'wrong # args: extra words after "else" clause in "if" command')
        branches.append((None, body_at(i)))
        break
    return branches


@compiles(cmd_if)
def _compiled_if(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """`if` whose words are all constants: its bodies parsed and its conditions compiled once."""
    words = command.words
    argv = [w.const for w in words]
    if None in argv:
        return None
    file = interp.current_file
    branches = []
    for cond, body in _if_branches(argv, lambda i: script_at(words, argv, i, file)):  # type: ignore[arg-type]
        if cond is None:
            branches.append((None, body))
        else:
            text = argv[cond]
            branches.append(((text, *word_origin(words, cond, text), compile_expr(text)), body))  # type: ignore[arg-type]

    def run_if(interp: Interp, argv: list[str]) -> str:
        for test, body in branches:
            if test is None or interp.evaluate(test[0], True, *test[1:]):
                return interp.run_script(body)
        return ""

    return run_if


@block("if expr", "block form: if EXPR / elif EXPR / else / end")
def block_if(interp: Interp, node: Block) -> str:
    if interp.header_condition(node.header):
        return interp.run_script(node.body)
    for clause in node.clauses:
        header = clause.header
        if header.name == "else" or interp.header_condition(header):
            return interp.run_script(clause.body)
    return ""


@cmd("while test body", "run a body while a condition holds")
def cmd_while(interp: Interp, argv: list[str]) -> str:
    body = interp.script_of(argv, 2)
    return _while(interp, argv[1], word_origin(interp.cmd_words, 1, argv[1]), None, body)


def _while(interp: Interp, test: str, where: tuple, compiled: Expr | None, body: Script) -> str:
    while interp.evaluate(test, True, *where, compiled):
        if not interp.loop_body(body):
            break
    return ""


@compiles(cmd_while)
def _compiled_while(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """`while {test} {body}`: the body parsed and the test compiled once."""
    words = command.words
    if not all(w.braced for w in words[1:]):
        return None
    test = words[1].const or ""
    where, compiled = word_origin(words, 1, test), compile_expr(test)
    body = script_at(words, [w.const for w in words], 2, interp.current_file)  # type: ignore[misc]
    return lambda interp, argv: _while(interp, test, where, compiled, body)


@block("while expr", "block form: while EXPR / body / end")
def block_while(interp: Interp, node: Block) -> str:
    header = node.header
    while interp.header_condition(header):
        if not interp.loop_body(node.body):
            break
    return ""


@cmd("for start test next body", "Tcl's for loop; the block form is `for VAR FIRST LAST ?STEP?`")
def cmd_for(interp: Interp, argv: list[str]) -> str:
    start, nxt, body = interp.script_of(argv, 1), interp.script_of(argv, 3), interp.script_of(argv, 4)
    return _for(interp, start, argv[2], word_origin(interp.cmd_words, 2, argv[2]), None, nxt, body)


def _for(interp: Interp, start: Script, test: str, where: tuple, compiled: Expr | None, nxt: Script, body: Script) -> str:
    interp.run_script(start)
    while interp.evaluate(test, True, *where, compiled):
        if not interp.loop_body(body):
            break
        try:
            interp.run_script(nxt)
        except Break:  # as in Tcl, `break` in the next clause ends the loop
            break
    return ""


@compiles(cmd_for)
def _compiled_for(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """`for {start} {test} {next} {body}`: the scripts parsed and the test compiled once."""
    words = command.words
    if not all(w.braced for w in words[1:]):
        return None
    argv = [w.const for w in words]
    start, nxt, body = (script_at(words, argv, k, interp.current_file) for k in (1, 3, 4))  # type: ignore[arg-type]
    test = argv[2] or ""
    where, compiled = word_origin(words, 2, test), compile_expr(test)
    return lambda interp, argv: _for(interp, start, test, where, compiled, nxt, body)


@block("for varName first last ?step?", "block form: VAR runs from FIRST up to, not including, LAST")
def block_for(interp: Interp, node: Block) -> str:
    argv = [interp.subst_word(w) for w in node.header.words]
    var = argv[1]
    values = [_number(v) for v in argv[2:]]
    first, last = values[0], values[1]
    step = values[2] if len(values) == 3 else 1
    if step == 0:
        raise ScriptError("for: STEP may not be 0")
    # FIRST + k*STEP rather than a running sum: 0 to 1 by 0.1 is ten rounds, not eleven.
    k, value = 0, first
    while (value < last) if step > 0 else (value > last):
        interp.set_var(var, format_value(value))
        if not interp.loop_body(node.body):
            break
        k += 1
        value = first + k * step
    return ""


def _foreach(interp: Interp, pairs: list[tuple[list[str], list[str]]], body) -> str:
    rounds = max((len(values) + len(names) - 1) // len(names) for names, values in pairs) if pairs else 0
    for r in range(rounds):
        for names, values in pairs:
            for k, name in enumerate(names):
                j = r * len(names) + k
                interp.set_var(name, values[j] if j < len(values) else "")
        if not interp.loop_body(body):
            break
    return ""


def _foreach_pairs(words: list[str]) -> list[tuple[list[str], list[str]]]:
    if len(words) % 2:
        raise ScriptError('wrong # args: should be "foreach varList list ?varList list ...? body"')
    pairs = []
    for i in range(0, len(words), 2):
        names = split_list(words[i])
        if not names:
            raise ScriptError("foreach varlist is empty")
        pairs.append((names, split_list(words[i + 1])))
    return pairs


@cmd("foreach varList list ?varList list ...? body", "run a body for each element of lists")
def cmd_foreach(interp: Interp, argv: list[str]) -> str:
    body = interp.script_of(argv, len(argv) - 1)
    return _foreach(interp, _foreach_pairs(argv[1:-1]), body)


@block("foreach varName list", "block form: foreach VAR LIST / body / end")
def block_foreach(interp: Interp, node: Block) -> str:
    argv = [interp.subst_word(w) for w in node.header.words]
    return _foreach(interp, _foreach_pairs(argv[1:]), node.body)


@cmd("break", "leave the innermost loop")
def cmd_break(interp: Interp, argv: list[str]) -> str:
    raise Break()


@cmd("continue", "go on with the next round of the innermost loop")
def cmd_continue(interp: Interp, argv: list[str]) -> str:
    raise Continue()


@cmd("skip", "in task.exec: make no job this time")
def cmd_skip(interp: Interp, argv: list[str]) -> str:
    raise Skip()


# --- macros and procs ----------------------------------------------------------------------------


@block("macro name ?param ...?", "define a macro: $1..$N are its words, $0 their count; variables are global unless `local`")
def block_macro(interp: Interp, node: Block) -> str:
    argv = [interp.subst_word(w) for w in node.header.words]
    params = [(p, None) for p in argv[2:]]
    interp.define_macro(Macro(argv[1], params, node.body, "macro", defined_at=node.pos))
    return ""


@cmd("proc name params body", "define a Tcl procedure: its variables are local unless `global`")
def cmd_proc(interp: Interp, argv: list[str]) -> str:
    body = interp.script_of(argv, 3)
    params, variadic = parse_params(argv[2])
    pos = interp.cmd_words[0].pos if interp.cmd_words else None
    interp.define_macro(Macro(argv[1], params, body, "proc", variadic=variadic, defined_at=pos))
    return ""


@cmd("rename oldName newName", "rename a command; an empty new name deletes it")
def cmd_rename(interp: Interp, argv: list[str]) -> str:
    if argv[1] not in interp.commands:
        raise ScriptError(f'can\'t rename "{argv[1]}": command doesn\'t exist')
    if argv[2] and argv[2] in interp.commands:
        raise ScriptError(f'can\'t rename to "{argv[2]}": command already exists')
    cdef = interp.commands.pop(argv[1])
    if argv[2]:
        interp.commands[argv[2]] = cdef
    return ""


# --- evaluation ----------------------------------------------------------------------------------


@cmd("expr arg ?arg ...?", "evaluate an expression (C-like operators, eq ne in ni, math functions)")
def cmd_expr(interp: Interp, argv: list[str]) -> str:
    if len(argv) == 2:
        return format_value(interp.expr_arg(argv, 1))
    pos = interp.cmd_words[1].pos if len(interp.cmd_words) > 1 else None
    return format_value(interp.expr(" ".join(argv[1:]), pos))


@compiles(cmd_expr)
def _compiled_expr(command: Command, cdef: CommandDef, interp: Interp) -> Special | None:
    """`expr {...}`: compiled once, evaluated as expr_arg evaluates it."""
    words = command.words
    if len(words) != 2 or not words[1].braced:
        return None
    text = words[1].const or ""
    where, compiled = word_origin(words, 1, text), compile_expr(text)
    return lambda interp, argv: format_value(interp.evaluate(text, False, *where, compiled))


@cmd("eval arg ?arg ...?", "run the words, joined by spaces, as a script")
def cmd_eval(interp: Interp, argv: list[str]) -> str:
    if len(argv) == 2:
        return interp.eval_nested(interp.script_of(argv, 1))
    return interp.eval_string(" ".join(argv[1:]))


_SUBST_OPTIONS = {"-nobackslashes": False, "-nocommands": False, "-novariables": False}


@cmd("subst ?-nobackslashes? ?-nocommands? ?-novariables? string",
     "substitute variables, commands and backslashes in a string (those not left out)")
def cmd_subst(interp: Interp, argv: list[str]) -> str:
    opts, i = parse_options(argv, 1, _SUBST_OPTIONS, 1, "subst")
    if i != len(argv) - 1:  # (every word before the string is an option)
        raise ScriptError(f'bad option "{argv[i]}": must be -nobackslashes, -nocommands, or -novariables')
    return interp.substitute(argv[-1], variables="-novariables" not in opts, commands="-nocommands" not in opts,
                             backslashes="-nobackslashes" not in opts)


# --- output and files ----------------------------------------------------------------------------


@cmd("echo ?word ...?", "print the words joined by spaces")
def cmd_echo(interp: Interp, argv: list[str]) -> str:
    interp.write(" ".join(argv[1:]) + "\n")
    return ""


@cmd("puts ?-nonewline? ?channelId? string", "write a string and a newline to a channel (stdout unless given)")
def cmd_puts(interp: Interp, argv: list[str]) -> str:
    args = argv[1:]
    newline = True
    if args and args[0] == "-nonewline" and len(args) > 1:
        newline = False
        args = args[1:]
    if len(args) == 2:
        channel, text = args
    elif len(args) == 1:
        channel, text = "stdout", args[0]
    else:
        raise ScriptError('wrong # args: should be "puts ?-nonewline? ?channelId? string"')
    interp.channels.get(interp, channel).write(interp, text + "\n" if newline else text)
    return ""


@cmd("source fileName", "run the commands of a file")
def cmd_source(interp: Interp, argv: list[str]) -> str:
    return interp.eval_file(argv[1])


BUILTINS.commands["input"] = BUILTINS.commands["source"]


@cmd("help ?command? ?subcommand?", "list the commands, or say how to use one")
def cmd_help(interp: Interp, argv: list[str]) -> str:
    if len(argv) == 1:
        names = sorted(n for n in interp.commands if not n.startswith("_"))
        width = max(len(n) for n in names) + 2
        lines = [f"{n:<{width}}{interp.commands[n].help.splitlines()[0] if interp.commands[n].help else ''}" for n in names]
        return "\n".join(lines)
    cdef = interp.commands.get(argv[1])
    if cdef is None:
        raise ScriptError(f'help: no command "{argv[1]}"')
    if cdef.subcommands:
        if len(argv) == 3:
            sub = resolve_subcommand(cdef.subcommands, argv[2], owner=argv[1])
            return f"{sub.usage.text}\n    {sub.help}"
        lines = [f"{argv[1]}: {cdef.help}"]
        lines += [f"  {sub.usage.text}\n      {sub.help}" for _, sub in sorted(cdef.subcommands.items())]
        return "\n".join(lines)
    lines = [cdef.usage.text, f"    {cdef.help}"] if cdef.fn else []
    if cdef.block is not None:
        usage = cdef.block_usage or cdef.usage
        lines += [f"{usage.text}  ...  end", f"    {cdef.block_help or cdef.help}"]
    return "\n".join(lines)

