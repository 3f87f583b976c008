"""Text to syntax tree: lang/grammar/sched.lark (lark, LALR) for words, then blocks by keyword.

    parse(text, file) -> Script        raises ParseError / IncompleteError with positions

Stage 1 is the LALR parser lark made of the grammar (psched.lang.lalr's tables, run by
psched.lang.lalrrun) with inline callbacks: tokens become parts (Text, VarRef, CmdSub, braced
and quoted pieces) carrying source offsets; parts that touch are grouped into Words; each
command line becomes a Command (a line of bare words comes as one LINE token, split here).
Nesting is counted on the way: more than MAX_NESTING levels is a ParseError, so no later walk
of the tree can run out of stack. Stage 2 groups commands into Blocks: a header line whose words
hold no body (`task NAME`, `if $x > 1`, `foreach v $list`) opens a block that `end` closes;
inside an if-block, `elif EXPR` / `else` start clauses. The table BLOCK_OPENERS says which
header lines open blocks, so the grammar does not have to guess.

A braced word that a command later runs as a script (Tcl's `if {$x} {body}`) is parsed when
first run and cached on its Word, with its absolute position as the offset (Jim Tcl's trick),
so errors inside it still point into the file.
"""

from __future__ import annotations

import gc
import threading
from functools import lru_cache
from typing import Any, Callable

from .lazyre import lazy_compile
from .errors import IncompleteError, ParseError, Pos
from .lalr import parser_module
from .lalrrun import Parser, Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput
from .openscan import Scan
from .nodes import Block, Clause, CmdSub, Command, Script, Source, Text, VarRef, Word
from .tcllist import backslash_subst

__all__ = ["parse", "parse_commands", "parse_body", "parse_at", "BLOCK_OPENERS", "CLAUSE_WORDS", "clause_problem",
           "is_complete", "MAX_NESTING"]


MAX_NESTING = 256
"""How deeply blocks, brackets, array indexes (together) and braces (apart) may nest in one
parse. Deeper text is refused with a ParseError: whatever walks the tree later (the
interpreter, read-time checks) then never runs out of Python stack."""


_BACKSLASH_NEWLINE = lazy_compile(r"\\\r?\n[ \t]*")
_BARE_WORD = lazy_compile(r"[^ \t]+")


# --- which header lines open a block ----------------------------------------------------------


def _if_opens(words: list[Word]) -> bool:
    """`if EXPR` opens a block. Tcl's form `if COND ?then? BODY ...` does not: its condition is
    braced and followed by more words (`if {$x} continue`), or is followed by a braced body or
    by `then` (`if $ok {...}`, `if [done] then {...}`); a block header's expression has none
    of these shapes."""
    if len(words) < 3:
        return len(words) == 2
    return not (words[1].braced or words[2].braced or words[2].const == "then")


def _while_opens(words: list[Word]) -> bool:
    """`while EXPR` opens a block; Tcl's `while TEST BODY` (a braced test or body) does not."""
    if len(words) == 3 and (words[1].braced or words[2].braced):
        return False
    return len(words) >= 2


def _for_opens(words: list[Word]) -> bool:
    """`for VAR FIRST LAST ?STEP?` opens a block; Tcl's `for {init} {test} {next} {body}` not."""
    if len(words) not in (4, 5) or words[1].braced:
        return False
    return not (len(words) == 5 and words[4].braced)


def _foreach_opens(words: list[Word]) -> bool:
    """`foreach VARS LIST ?VARS LIST ...?` (an odd number of words) opens a block; Tcl's form
    has a body after the pairs, so an even number."""
    return len(words) >= 3 and len(words) % 2 == 1


_SWITCH_TAKES_VALUE = ("-matchvar", "-indexvar")


def _switch_opens(words: list[Word]) -> bool:
    """`switch ?options? STRING` alone opens a block (its clauses are `case PATTERN ...` and
    `default`); Tcl's form has patterns and bodies after the string."""
    i = 1
    while i < len(words) - 1 and (words[i].const or "").startswith("-"):
        option = words[i].const
        i += 2 if option in _SWITCH_TAKES_VALUE else 1
        if option == "--":
            break
    return len(words) - i == 1


BLOCK_OPENERS: dict[str, Callable[[list[Word]], bool]] = {
    "task": lambda w: len(w) == 2,
    "task.exec": lambda w: len(w) == 1,
    "task.exit": lambda w: len(w) == 2,
    "macro": lambda w: len(w) >= 2,
    "if": _if_opens,
    "while": _while_opens,
    "for": _for_opens,
    "foreach": _foreach_opens,
    "switch": _switch_opens,
    "try": lambda w: len(w) == 1,
    "sync": lambda w: len(w) >= 2,
}
"""keyword -> predicate over the header's words: True when the line opens a block."""

PLAIN_INSIDE = {"sync": "task"}
"""keyword -> the block directly inside which it opens nothing: there it is a plain command
(`sync NAME` in a task is a directive; elsewhere it opens a sync block)."""

CLAUSE_WORDS = {"elif": "if", "elseif": "if", "else": "if", "case": "switch", "default": "switch",
                "on": "try", "trap": "try", "finally": "try"}
"""Clause keywords and the block they belong to. Outside its block a clause word is an
ordinary word (a command named `on` or `default` still runs), except `if`'s, which Tcl's `if`
command takes as arguments only."""

_LAST_CLAUSE = {"if": "else", "switch": "default", "try": "finally"}
"""The clause that must come last in its block."""


def _clause_problem(block: Block, command: Command) -> tuple[str, Pos] | None:
    """What is wrong with a clause line of a block (message, where to point)."""
    return clause_problem(block.name, block.pos.line, block.clauses[-1].header.name if block.clauses else None,
                          block.body.commands[0] if block.body.commands and not block.clauses else None, command)


def clause_problem(owner: str, opened: int, last_clause: str | None, body_head: Command | Block | None,
                   command: Command) -> tuple[str, Pos] | None:
    """What is wrong with a clause line `command` of the `owner` block opened at line `opened`,
    whose last clause so far is `last_clause` and whose first line before any clause is
    `body_head` (message, where to point); None when nothing is. psched.lang.openness asks it too."""
    name, n = command.words[0].const, len(command.words)
    last = _LAST_CLAUSE[owner]
    if last_clause == last:
        return f"`{name}` after `{last}` in the `{owner}` block opened at line {opened}", command.pos
    if name in ("else", "default", "finally") and n != 1:
        return f"`{name}` takes no words after it", command.words[1].pos
    if name in ("elif", "elseif") and n < 2:
        return f"`{name}` needs a condition", command.pos
    if name == "case" and n < 2:
        return "`case` needs at least one pattern", command.pos
    if name in ("on", "trap") and n != 3:
        what = "a completion code" if name == "on" else "an errorCode pattern"
        return f"`{name}` takes {what} and a list of variable names: `{name} {'error' if name == 'on' else 'POSIX'} {{result options}}`", command.pos
    if owner == "switch" and body_head is not None:
        first = body_head
        return ("a `switch` block holds `case PATTERN` and `default` lines, each followed by its body; "
                "this line comes before the first of them"), first.pos
    return None


# --- stage 1: lark -----------------------------------------------------------------------------


class _Builder:
    """Inline lark callbacks: parse-tree rules straight to parts, words and commands.

    A part is a tuple (start, end, kind, value, where) with offsets into the text being parsed;
    kind is "t" (Text), "v" (VarRef), "c" (CmdSub), "b" (braced: value is the inner text),
    "q" (quoted: value is a list of parts); where is the part's first Token, or its Pos.

    Nesting depth is counted bottom-up as lark reduces: `nested` holds (start offset, depth)
    of the brackets and array references reduced but not yet claimed by the command or
    construct around them (reductions come in text order, so those inside a span are the
    last entries); a braced word's nested braces return their depth as an int.
    """

    def __init__(self) -> None:
        self.source: Source = Source("<string>", "")
        self.nested: list[tuple[int, int]] = []
        self.flat = False  # True: the top level stays a flat list of commands (no blocks)

    def claim(self, start: int) -> int:
        """The depth of the deepest bracket or array reference reduced since offset `start`."""
        nested = self.nested
        depth = 0
        while nested and nested[-1][0] >= start:
            d = nested.pop()[1]
            if d > depth:
                depth = d
        return depth

    def too_deep(self, what: str, where: Token | Pos) -> ParseError:
        pos = where if type(where) is Pos else self.pos(where)
        return _error(ParseError, f"{what} nested too deeply (more than {MAX_NESTING} levels)", pos, self.source)

    # positions

    def pos(self, tok: Token) -> Pos:
        src = self.source
        line = src.line0 + tok.line - 1
        column = tok.column + (src.col0 - 1 if tok.line == 1 else 0)
        return Pos(src.file, line, column)

    # tokens to parts

    def token_part(self, tok: Token) -> tuple:
        kind = tok.type
        if kind == "VAR":
            name = tok[1:]
            return (tok.start_pos, tok.end_pos, "v", VarRef(name, None, self.pos(tok)), tok)
        if kind == "VARBRACED":
            return (tok.start_pos, tok.end_pos, "v", VarRef(tok[2:-1], None, self.pos(tok)), tok)
        if kind == "ESC":
            return (tok.start_pos, tok.end_pos, "t", backslash_subst(str(tok)), tok)
        if kind == "BRACED_SIMPLE":
            return (tok.start_pos, tok.end_pos, "b", str(tok)[1:-1], tok)
        if kind == "QUOTED_SIMPLE":
            inner = str(tok)[1:-1]
            return (tok.start_pos, tok.end_pos, "q", [(tok.start_pos + 1, tok.end_pos - 1, "t", inner, tok)], tok)
        if kind == "QESC_NL":
            return (tok.start_pos, tok.end_pos, "t", " ", tok)
        # BARE, DOLLAR, QUOTED_TEXT, INDEX_TEXT
        return (tok.start_pos, tok.end_pos, "t", str(tok), tok)

    def parts(self, children: list) -> list[tuple]:
        out = []
        for c in children:
            if not isinstance(c, Token):
                out.append(c)
            elif c.type == "BARES":
                # Several bare words on one line (a BARES token, which holds no newline):
                # each word's position is the token's plus its offset in it.
                base = c.start_pos
                for m in _BARE_WORD.finditer(c):
                    out.append((base + m.start(), base + m.end(), "t", m.group(), (c, m.start())))
            else:
                out.append(self.token_part(c))
        return out

    # rules

    def start(self, children: list) -> Script | list[Command]:
        if self.flat:
            return [c if type(c) is Command else self.line_command(c) for c in children
                    if type(c) is Command or c.type == "LINE"]
        return self.script(children)

    def script(self, children: list) -> Script:
        commands = [c if type(c) is Command else self.line_command(c) for c in children
                    if type(c) is Command or c.type == "LINE"]
        return _build_blocks(commands, self.source)

    def line_command(self, tok: Token) -> Command:
        """A LINE token: a command of bare words, each a constant Word."""
        text = str(tok)
        base = tok.start_pos
        first = self.pos(tok)
        file, line, column = first.file, first.line, first.column
        words = []
        for m in _BARE_WORD.finditer(text, 0, len(text.rstrip())):
            value, start = m.group(), m.start()
            pos = first if start == 0 else Pos(file, line, column + start)
            words.append(Word((Text(value),), pos, base + m.end(), base + start, const=value))
        return Command(words, first, self.source)

    def command(self, children: list) -> Command:
        parts = self.parts(children)
        words = _group_words(parts, self)
        command = Command(words, words[0].pos, self.source)
        for word in words:
            if word.expand:
                command.expands = True
        if self.nested:
            command.depth = self.claim(parts[0][0])
        return command

    def _cmdsub(self, children: list) -> tuple:
        open_tok, close_tok = children[0], children[-1]
        script = self.script(children[1:-1])
        pos = self.pos(open_tok)
        depth = script.depth + 1
        if depth > MAX_NESTING:
            raise self.too_deep("brackets and blocks", pos)
        self.nested.append((open_tok.start_pos, depth))
        return (open_tok.start_pos, close_tok.end_pos, "c", CmdSub(script, pos), pos)

    cmdsub = q_cmdsub = i_cmdsub = _cmdsub

    def _array_ref(self, children: list) -> tuple:
        open_tok, close_tok = children[0], children[-1]
        name = open_tok[1:-1]
        pos = self.pos(open_tok)
        inner = self.parts(children[1:-1])
        index = _make_word(inner, pos, open_tok.end_pos, close_tok.start_pos, self) if inner else _const_word("", pos, open_tok.end_pos)
        depth = self.claim(open_tok.start_pos) + 1 if self.nested else 1
        if depth > MAX_NESTING:
            raise self.too_deep("array indexes and brackets", pos)
        self.nested.append((open_tok.start_pos, depth))
        return (open_tok.start_pos, close_tok.end_pos, "v", VarRef(name, index, pos), pos)

    array_ref = q_array_ref = i_array_ref = _array_ref

    def braced(self, children: list) -> tuple:
        open_tok, close_tok = children[0], children[-1]
        self.inner_braced(children)  # checks the depth
        inner = self.source.text[open_tok.end_pos:close_tok.start_pos]
        return (open_tok.start_pos, close_tok.end_pos, "b", inner, self.pos(open_tok))

    def inner_braced(self, children: list) -> int:
        """Nested braces are only text; what they give the parent is their depth."""
        depth = 1
        for child in children:
            if type(child) is int and child >= depth:
                depth = child + 1
        if depth > MAX_NESTING:
            raise self.too_deep("braces", children[0])
        return depth

    def quoted(self, children: list) -> tuple:
        open_tok, close_tok = children[0], children[-1]
        return (open_tok.start_pos, close_tok.end_pos, "q", self.parts(children[1:-1]), self.pos(open_tok))


def _const_word(value: str, pos: Pos, offset: int) -> Word:
    return Word((Text(value),), pos, offset, offset, const=value)


def _make_word(parts: list[tuple], pos: Pos, start: int, end: int, builder: _Builder) -> Word:
    """Merge adjacent texts; a word of texts only gets `const`."""
    merged: list = []
    for part in parts:
        kind, value = part[2], part[3]
        if kind == "t":
            if merged and isinstance(merged[-1], Text):
                merged[-1] = Text(merged[-1].value + value)
            else:
                merged.append(Text(value))
        elif kind in ("v", "c"):
            merged.append(value)
        elif kind == "b":  # braces inside a word are literal characters
            merged.append(Text(builder.source.text[part[0]:part[1]]))
        elif kind == "q":  # so are quotes; what is between them is still substituted
            merged.extend([Text('"')] + [p for p in _make_word(value, pos, part[0], part[1], builder).parts] + [Text('"')])
    if len(merged) > 1:  # re-merge texts joined by the cases above
        joined: list = []
        for item in merged:
            if joined and isinstance(item, Text) and isinstance(joined[-1], Text):
                joined[-1] = Text(joined[-1].value + item.value)
            else:
                joined.append(item)
        merged = joined
    const = None
    if not merged:
        const = ""
        merged = [Text("")]
    elif len(merged) == 1 and isinstance(merged[0], Text):
        const = merged[0].value
    return Word(tuple(merged), pos, end, start, const=const)


def _group_words(parts: list[tuple], builder: _Builder) -> list[Word]:
    """Parts that touch (one ends where the next starts) form one word."""
    groups: list[list[tuple]] = []
    for part in parts:
        if groups and groups[-1][-1][1] == part[0]:
            groups[-1].append(part)
        else:
            groups.append([part])
    return [_group_word(group, builder) for group in groups]


def _group_word(group: list[tuple], builder: _Builder) -> Word:
    """The Word of parts that touch. `{*}` followed by more is Tcl's expansion: the rest is
    a word of its own, whose value's elements become words when the command runs."""
    first = group[0]
    start, end = first[0], group[-1][1]
    where = first[4]
    if type(where) is Pos:
        pos = where
    elif type(where) is tuple:  # (token, offset in it): a later word of a BARES token
        tok, delta = where
        pos = builder.pos(tok)
        pos = Pos(pos.file, pos.line, pos.column + delta)
    else:
        pos = builder.pos(where)
    if first[2] == "t" and len(group) == 1:  # most words: one piece of plain text
        value = first[3]
        return Word((Text(value),), pos, end, start, const=value)
    if first[2] in ("b", "q") and len(group) > 1:
        if first[2] == "b" and first[3] == "*":
            word = _group_word(group[1:], builder)
            word.expand, word.pos, word.start = True, pos, start
            return word
        what = "close-brace" if first[2] == "b" else "close-quote"
        bad = group[1]
        raise _error(ParseError, f"extra characters after {what}", _offset_pos(bad[0], builder), builder.source)
    if first[2] == "b":
        inner = first[3]
        value = _BACKSLASH_NEWLINE.sub(" ", inner) if "\\\n" in inner or "\\\r\n" in inner else inner
        body_pos = Pos(pos.file, pos.line, pos.column + 1)
        return Word((Text(value),), pos, end, start, const=value, braced=True, body_pos=body_pos,
                    raw=inner if value is not inner else None, source=builder.source)
    if first[2] == "q":
        return _make_word(first[3], pos, start, end, builder)
    return _make_word(group, pos, start, end, builder)


def _offset_pos(offset: int, builder: _Builder) -> Pos:
    """Position of a character offset in the text being parsed."""
    return _pos_of_offset(builder.source, offset)


def _pos_of_offset(source: Source, offset: int) -> Pos:
    text = source.text
    line = text.count("\n", 0, offset)
    last_nl = text.rfind("\n", 0, offset)
    column = offset - last_nl  # 1-based when last_nl == -1 too
    if line == 0:
        column += source.col0 - 1
    return Pos(source.file, source.line0 + line, column)


# --- stage 2: blocks ---------------------------------------------------------------------------


def _build_blocks(commands: list[Command], source: Source) -> Script:
    """Group a flat list of commands into blocks closed by `end`."""
    top: list = []
    # stack entries: (Block, the list its commands go to)
    stack: list[tuple[Block, list]] = []
    current = top
    depth = 0  # the deepest nesting of blocks, brackets and array indexes seen
    for command in commands:
        if command.depth or stack:
            d = len(stack) + command.depth
            if d > depth:
                depth = d
                if d > MAX_NESTING:
                    raise _error(ParseError, f"blocks and brackets nested too deeply (more than {MAX_NESTING} levels)",
                                 command.pos, source)
        name = command.words[0].const
        if name == "end" and len(command.words) == 1:
            if not stack:
                raise _error(ParseError, "`end` without an open block to close", command.pos, source)
            block, _ = stack.pop()
            block.end_pos = command.pos
            if block.name == "switch" and block.body.commands:
                first = block.body.commands[0]
                raise _error(ParseError, "a `switch` block holds `case PATTERN` and `default` lines, each followed "
                             "by its body; this line comes before the first of them", first.pos, source)
            current = _block_target(stack, top)
            continue
        if name in CLAUSE_WORDS:
            owner = CLAUSE_WORDS[name]
            if stack and stack[-1][0].name == owner:
                block = stack[-1][0]
                problem = _clause_problem(block, command)
                if problem is not None:
                    message, where = problem
                    raise _error(ParseError, message, where, source)
                clause = Clause(command, Script([], source))
                block.clauses.append(clause)
                stack[-1] = (block, clause.body.commands)
                current = clause.body.commands
                continue
            if owner == "if" and (name == "else" or len(command.words) < 3):  # `elseif` as a word in a Tcl `if` is fine
                raise _error(ParseError, f"`{name}` outside an `if` block", command.pos, source)
        opens = BLOCK_OPENERS.get(name) if name is not None else None
        if opens is not None and stack and PLAIN_INSIDE.get(name or "") == stack[-1][0].name:
            opens = None
        if opens is not None and opens(command.words):
            block = Block(command, Script([], source))
            current.append(block)
            stack.append((block, block.body.commands))
            current = block.body.commands
            if len(stack) > depth:
                depth = len(stack)
                if depth > MAX_NESTING:
                    raise _error(ParseError, f"blocks nested too deeply (more than {MAX_NESTING} levels)",
                                 command.pos, source)
            continue
        current.append(command)
    if stack:
        block = stack[-1][0]
        err = IncompleteError(f"missing `end` for `{block.name}` opened at line {block.pos.line}"
                              f"{_proc_hint(block) or _eaten_end_hint(block)}",
                              pos=block.pos, opener=block.name, opened_at=block.pos)
        err.source_line = block.header.source_line()
        raise err
    return Script(top, source, depth)


def _proc_hint(block: Block) -> str:
    """Why a Tcl `proc`'s shape as `macro` ran to the end of the file (`macro m {} {body}`)."""
    words = block.header.words
    if block.name == "macro" and len(words) >= 4 and words[-1].braced and words[-2].braced:
        return ("; `macro` has no one-line form: its body goes on the lines after its header "
                "(Tcl's `proc name {params} {body}` is one)")
    return ""


def _eaten_end_hint(block: Block) -> str:
    """Why a block's `end` went missing when a `task.exit` inside it was written in Tcl's one-line
    form (`task.exit {puts $stdout}`): that line opened a block and took the `end` below it."""
    for inner in block.body.commands:
        if isinstance(inner, Block) and inner.name == "task.exit" and inner.words[1].braced:
            return (f"; the `task.exit` at line {inner.pos.line} took it: `task.exit` has no one-line form: "
                    "its selector goes on its line (`task.exit 0`, `task.exit default`), its body on "
                    "the lines after, then `end`")
    return ""


def _block_target(stack: list, top: list) -> list:
    return stack[-1][1] if stack else top


# --- errors ------------------------------------------------------------------------------------


def _error(cls, message: str, pos: Pos, source: Source):
    err = cls(message, pos=pos)
    err.source_line = source.line(pos.line)
    return err


_OPEN_WORDS = {"{": ("close-brace", "{"), '"': ("close-quote", '"'), "[": ("close-bracket `]`", "["), "(": ("close-paren `)` of an array index", "(")}


def open_constructs(text: str) -> list[tuple[str, int]]:
    """The braces, quotes, brackets and array parentheses still open at the end of `text`.

    A small scan by Tcl's rules (psched.lang.openscan), used only to explain a parse that ran out of input.
    """
    return Scan().feed(text).open


def _explain(err: UnexpectedInput, source: Source) -> ParseError:
    """Turn a lark error into ours, in words, with the position."""
    text = source.text
    offset = getattr(err, "pos_in_stream", None)
    token = getattr(err, "token", None)
    at_end = isinstance(err, UnexpectedEOF) or (token is not None and token.type == "$END")
    if isinstance(err, UnexpectedCharacters) and offset is not None and text[offset] == "\\" and offset == len(text) - 1:
        at_end = True
    if at_end or offset is None:
        still_open = open_constructs(text)
        if still_open:
            kind, where = still_open[-1]
            what, opener = _OPEN_WORDS[kind]
            opened = _pos_of_offset(source, where)
            e = IncompleteError(f"missing {what} (opened at line {opened.line}, column {opened.column})",
                                pos=opened, opener=opener, opened_at=opened)
            e.source_line = source.line(opened.line)
            return e
        if text.endswith("\\"):
            pos = _pos_of_offset(source, len(text) - 1)
            e = IncompleteError("backslash at the end of the script", pos=pos, opener="\\", opened_at=pos)
            e.source_line = source.line(pos.line)
            return e
    pos = _pos_of_offset(source, offset if offset is not None else len(text))
    char = text[offset] if offset is not None and offset < len(text) else ""
    if token is not None and token.type == "RBRACKET" or char == "]":
        message = "unmatched `]` (a close-bracket with no `[` before it; write \\] for a literal one)"
    elif token is not None and token.type == "RPAREN":
        message = "unexpected `)`"
    elif char:
        message = f"unexpected character {char!r}"
    else:
        message = "unexpected end of script"
    return _error(ParseError, message, pos, source)


# --- entry points ------------------------------------------------------------------------------

_builder = _Builder()
_lark: Any = None
_parse_lock = threading.RLock()  # the shell parses in its completer thread too


def _parser() -> Any:
    """The LALR parser of lang/grammar/sched.lark (psched.lang.lalr's tables), made once, with
    _Builder's callbacks."""
    global _lark
    if _lark is None:
        _lark = Parser(parser_module(), _builder)
    return _lark


def parse(text: str, file: str = "<string>", line0: int = 1, col0: int = 1, parent: Source | None = None) -> Script:
    """Parse a script; positions start at (line0, col0) of `file`, a part of `parent` if given."""
    source = Source(file, text, line0, col0, parent=parent)
    script = _parse(source, flat=False)
    return script if isinstance(script, Script) else Script([], source)  # Script([]): an empty text


def parse_commands(text: str, file: str = "<string>", line0: int = 1) -> list[Command]:
    """Stage 1 only: the commands of `text` as a flat list, block keywords not yet matched.

    For psched.lang.openness, which follows the blocks of a growing text itself, a piece at a time.
    """
    commands = _parse(Source(file, text, line0, 1), flat=True)
    return commands if isinstance(commands, list) else []


def _parse(source: Source, flat: bool) -> Script | list[Command]:
    text, file, line0, col0 = source.text, source.file, source.line0, source.col0
    parser = _parser()
    # A parse makes many small objects that all live on; the garbage collector's passes over
    # them during the parse find nothing to free and cost a third of the time of a big script.
    collecting = gc.isenabled() and len(text) > 4096
    with _parse_lock:  # one builder holds the state of a parse: one parse at a time
        saved = _builder.source, _builder.nested, _builder.flat
        _builder.source, _builder.nested, _builder.flat = source, [], flat
        if collecting:
            gc.disable()
        try:
            script = parser.parse(text)
        except UnexpectedInput as err:
            raise _explain(err, source) from None
        except RecursionError:
            raise _error(ParseError, "script nested too deeply", Pos(file, line0, col0), source) from None
        finally:
            _builder.source, _builder.nested, _builder.flat = saved
            if collecting:
                gc.enable()
    return script


def parse_body(word: Word, file: str) -> Script:
    """Parse a braced word as a script, once: the result is cached on the word."""
    script = word.script
    if script is None:
        pos = word.body_pos or word.pos
        text = word.raw if word.raw is not None else word.const if word.const is not None else ""
        script = parse(text, pos.file if pos else file, pos.line, pos.column, word.source)
        word.script = script
    return script


_AT_CACHE: dict[tuple, tuple[Source | None, Script]] = {}


def parse_at(text: str, pos: Pos, parent: Source | None) -> Script:
    """Parse a script that stands at `pos` inside `parent` (a [script] in an expression), once."""
    key = (text, pos.file, pos.line, pos.column, id(parent))
    hit = _AT_CACHE.get(key)
    if hit is not None and hit[0] is parent:
        return hit[1]
    script = parse(text, pos.file, pos.line, pos.column, parent)
    if len(_AT_CACHE) >= 4096:
        _AT_CACHE.clear()
    _AT_CACHE[key] = (parent, script)  # keeps parent alive, so its id is not reused meanwhile
    return script


@lru_cache(maxsize=2048)
def parse_cached(text: str, file: str = "<string>") -> Script:
    """Parse a string that is run as a script (eval, a [..] in expr, a macro body string)."""
    return parse(text, file)


def is_complete(text: str) -> IncompleteError | None:
    """None when `text` parses (or fails for a reason other than running out); else what is open."""
    try:
        parse(text, "<input>")
    except IncompleteError as err:
        return err
    except ParseError:
        return None
    return None
