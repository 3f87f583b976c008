"""The parser: words, substitutions, blocks, positions and errors in words."""

import pytest

from psched.lang.errors import IncompleteError, ParseError
from psched.lang.nodes import Block, CmdSub, Command, Text, VarRef
from psched.lang.parser import is_complete, parse


def words(text):
    """The words of each top-level command: their constant value, or a sketch of their parts."""
    out = []
    for cmd in parse(text).commands:
        if isinstance(cmd, Block):
            out.append(("block", cmd.name, len(cmd.body.commands), [c.header.name for c in cmd.clauses]))
            continue
        row = []
        for w in cmd.words:
            if w.const is not None:
                row.append(w.const)
            else:
                row.append(tuple(_sketch(p) for p in w.parts))
        out.append(row)
    return out


def _sketch(part):
    if isinstance(part, Text):
        return part.value
    if isinstance(part, VarRef):
        return ("$", part.name) if part.index is None else ("$()", part.name, _sketch_word(part.index))
    if isinstance(part, CmdSub):
        return ("[]", len(part.script.commands))
    raise AssertionError(part)


def _sketch_word(word):
    return word.const if word.const is not None else tuple(_sketch(p) for p in word.parts)


@pytest.mark.parametrize("text, expected", [
    ("set x 1", [["set", "x", "1"]]),
    ("a b; c d\ne", [["a", "b"], ["c", "d"], ["e"]]),
    ("  a   b  \n\n\n", [["a", "b"]]),
    ("# comment\na # not a comment", [["a", "#", "not", "a", "comment"]]),
    ("a \\\n  b", [["a", "b"]]),
    ("x {a {b} c}", [["x", "a {b} c"]]),
    ("x {}", [["x", ""]]),
    ('x ""', [["x", ""]]),
    ('x "a  b"', [["x", "a  b"]]),
    ('x "a\\tb\\n"', [["x", "a\tb\n"]]),
    ("x a\\ b", [["x", "a b"]]),
    ("x \\$y \\[z\\]", [["x", "$y", "[z]"]]),
    ("x $y", [["x", (("$", "y"),)]]),
    ("x ${a b}", [["x", (("$", "a b"),)]]),
    ("x $a(k)", [["x", (("$()", "a", "k"),)]]),
    ("x $a($i)", [["x", (("$()", "a", (("$", "i"),)),)]]),
    ("x $host:80", [["x", (("$", "host"), ":80")]]),
    ("x $::g", [["x", (("$", "::g"),)]]),
    ("x a$b.c", [["x", ("a", ("$", "b"), ".c")]]),
    ("x $", [["x", "$"]]),
    ("x [a [b] c]", [["x", (("[]", 1),)]]),
    ("x [a; b]", [["x", (("[]", 2),)]]),
    ('x "v=$v [c]"', [["x", ("v=", ("$", "v"), " ", ("[]", 1))]]),
    ("x {a\\\n   b}", [["x", "a b"]]),
    ('x "a\\\n   b"', [["x", "a b"]]),
    ("x a{b}c a\"b\"", [["x", "a{b}c", 'a"b"']]),
    ("x {$y [z]}", [["x", "$y [z]"]]),
])
def test_words(text, expected):
    assert words(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("task t\n command ls\nend", [("block", "task", 1, [])]),
    ("task.exec\n skip\nend", [("block", "task.exec", 1, [])]),
    ("task.exit 0\n echo ok\nend", [("block", "task.exit", 1, [])]),
    ("macro m a b\n echo $a\n echo $b\nend", [("block", "macro", 2, [])]),
    ("if $x > 1\n a\nelif $x\n b\nelse\n c\nend", [("block", "if", 1, ["elif", "else"])]),
    ("if {$x > 1}\n a\nend", [("block", "if", 1, [])]),
    ("while $i < 3\n incr i\nend", [("block", "while", 1, [])]),
    ("for i 0 10\n echo $i\nend", [("block", "for", 1, [])]),
    ("for i 0 10 2\n echo $i\nend", [("block", "for", 1, [])]),
    ("foreach v {a b}\n echo $v\nend", [("block", "foreach", 1, [])]),
    # Tcl forms are ordinary commands
    ("if {$x} {a} else {b}", [["if", "$x", "a", "else", "b"]]),
    ("if {$x} then {a}", [["if", "$x", "then", "a"]]),
    ("while {$i < 3} {incr i}", [["while", "$i < 3", "incr i"]]),
    ("for {set i 0} {$i < 3} {incr i} {echo $i}", [["for", "set i 0", "$i < 3", "incr i", "echo $i"]]),
    ("foreach v {a b} {echo $v}", [["foreach", "v", "a b", "echo $v"]]),
    ("proc p {a b} {return $a}", [["proc", "p", "a b", "return $a"]]),
    # nesting
    ("task t\n task.exit 0\n  if $x\n   a\n  end\n end\nend", [("block", "task", 1, [])]),
])
def test_blocks(text, expected):
    assert words(text) == expected


def test_positions_are_absolute():
    script = parse("set a 1\n  echo $b [foo\n  bar]\n", "f.sched")
    echo = script.commands[1]
    assert (echo.pos.line, echo.pos.column) == (2, 3)
    var = echo.words[1].parts[0]
    assert (var.pos.line, var.pos.column) == (2, 8)
    sub = echo.words[2].parts[0]
    inner = sub.script.commands
    assert (inner[0].pos.line, inner[0].pos.column) == (2, 12)
    assert (inner[1].pos.line, inner[1].pos.column) == (3, 3)


def test_braced_body_positions_are_absolute():
    from psched.lang.parser import parse_body

    script = parse("x\nwhile {1} {\n  set a 1\n    bad [\n}\n", "f.sched")
    word = script.commands[1].words[2]
    with pytest.raises(IncompleteError) as info:
        parse_body(word, "f.sched")
    assert (info.value.pos.line, info.value.pos.column) == (4, 9)
    ok = parse("x {\n  set a 1\n  set b 2}", "g.sched").commands[0].words[1]
    body = parse_body(ok, "g.sched")
    assert [(c.pos.line, c.pos.column) for c in body.commands] == [(2, 3), (3, 3)]
    assert parse_body(ok, "g.sched") is body  # cached on the word


@pytest.mark.parametrize("text, line, column, message", [
    ("set x {abc", 1, 7, "missing close-brace"),
    ('puts "abc', 1, 6, "missing close-quote"),
    ("a\n  b [c d", 2, 5, "missing close-bracket"),
    ("echo $a(b", 1, 8, "missing close-paren"),
    ("task foo\n command x\n", 1, 1, "missing `end` for `task` opened at line 1"),
    ("x\nif $a\n b\n", 2, 1, "missing `end` for `if` opened at line 2"),
    ("x\\", 1, 2, "backslash at the end"),
])
def test_incomplete(text, line, column, message):
    with pytest.raises(IncompleteError) as info:
        parse(text, "f.sched")
    err = info.value
    assert (err.pos.line, err.pos.column) == (line, column)
    assert message in err.message
    assert is_complete(text) is not None


@pytest.mark.parametrize("text, line, column, message", [
    ("a\nend", 2, 1, "`end` without an open block"),
    ("set x {a}b", 1, 10, "extra characters after close-brace"),
    ('set x "a"b', 1, 10, "extra characters after close-quote"),
    ("a ] b", 1, 3, "unmatched `]`"),
    ("else", 1, 1, "`else` outside an `if` block"),
    ("elif $x", 1, 1, "`elif` outside an `if` block"),
    ("if $x\n a\nelse\n b\nelif $y\n c\nend", 5, 1, "after `else`"),
])
def test_parse_errors(text, line, column, message):
    with pytest.raises(ParseError) as info:
        parse(text, "f.sched")
    err = info.value
    assert not isinstance(err, IncompleteError)
    assert (err.pos.file, err.pos.line, err.pos.column) == ("f.sched", line, column)
    assert message in err.message
    rendered = err.render()
    assert rendered.startswith(f"f.sched:{line}:{column}: ")
    assert rendered.splitlines()[-1].index("^") == 4 + column - 1


def test_is_complete_for_the_prompt():
    assert is_complete("set x 1") is None
    assert is_complete("task t").opener == "task"
    assert is_complete("set x {").opener == "{"
    assert is_complete('echo "a').opener == '"'
    assert is_complete("echo [a").opener == "["
    assert is_complete("a ]") is None  # an error, but not one more lines can fix


def test_empty_and_comment_only():
    assert parse("").commands == []
    assert parse("# only\n   # comments\n").commands == []
    assert isinstance(parse("x").commands[0], Command)
