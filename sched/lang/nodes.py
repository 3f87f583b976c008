"""The syntax tree of the sched language: records (psched.lang.record) with source positions.

The parser (psched.lang.parser) builds these; the interpreter (psched.lang.interp) walks them.

    Script      a list of Command and Block, with the Source it came from
    Command     one command line: its Words
    Word        parts that touch, or one Braced literal; `.const` is set when no substitution
    Text        literal text (after backslash substitution)
    VarRef      $name, ${name}, $name(index)
    CmdSub      [script]
    Block       a header Command, its body Script, its clauses (`elif`/`else`), closed by `end`
"""

from __future__ import annotations

from typing import Any, Iterator, Union

from .errors import Pos
from .record import Record


class Source(Record):
    """A text the parser read, kept so that errors can show the offending line.

    A braced body parsed later is a Source of its own whose first character stands at
    (line0, col0) of the file, so that positions stay absolute; its `parent` is the source it
    was cut from, which has the whole lines.
    """

    __slots__ = _fields = ("file", "text", "line0", "col0", "_lines", "parent")
    file: str
    text: str
    line0: int
    col0: int
    _lines: list[str] | None
    parent: "Source | None"

    def __init__(self, file: str, text: str, line0: int = 1, col0: int = 1, _lines: list[str] | None = None,
                 parent: "Source | None" = None) -> None:
        self.file = file
        self.text = text
        self.line0 = line0
        self.col0 = col0
        self._lines = _lines
        self.parent = parent

    def line(self, number: int) -> str:
        """The text of file line `number` as far as this source holds it."""
        if self.parent is not None:
            return self.parent.line(number)
        if self._lines is None:
            self._lines = self.text.split("\n")
        index = number - self.line0
        if not 0 <= index < len(self._lines):
            return ""
        text = self._lines[index]
        return " " * (self.col0 - 1) + text if index == 0 else text


class Text(Record):
    __slots__ = _fields = ("value",)
    value: str

    def __init__(self, value: str) -> None:
        self.value = value


class VarRef(Record):
    __slots__ = _fields = ("name", "index", "pos")
    name: str
    index: "Word | None"
    pos: Pos

    def __init__(self, name: str, index: "Word | None", pos: Pos) -> None:
        self.name = name
        self.index = index
        self.pos = pos


class CmdSub(Record):
    __slots__ = _fields = ("script", "pos")
    script: "Script"
    pos: Pos

    def __init__(self, script: "Script", pos: Pos) -> None:
        self.script = script
        self.pos = pos


Part = Union[Text, VarRef, CmdSub]


class Word(Record):
    """One word of a command.

    `parts` are substituted and joined at run time. `const` is the word's value when it needs
    no substitution (bare text or a braced word). `braced` marks a `{...}` word; its `body_pos`
    is where the text inside the braces starts, so that a body parsed later reports absolute
    positions. `raw` is the text between the braces as written when it differs from `const`
    (a backslash-newline inside braces becomes a space in the value, but a body is parsed from
    the text as written so that its line numbers stay those of the file). `source` is the
    text a braced word was parsed from. `script` caches its parse as a body.
    """

    __slots__ = _fields = ("parts", "pos", "end", "start", "const", "braced", "body_pos", "script", "raw", "source",
                           "expand")
    parts: tuple
    pos: Pos
    end: int  # offset just past the word in its source text
    start: int  # offset of the word's first character in its source text
    const: str | None
    braced: bool
    body_pos: Pos | None
    script: "Script | None"
    raw: str | None
    source: Source | None
    expand: bool  # {*}word: its value is a list whose elements become words

    def __init__(self, parts: tuple, pos: Pos, end: int, start: int, const: str | None = None, braced: bool = False,
                 body_pos: Pos | None = None, script: "Script | None" = None, raw: str | None = None,
                 source: Source | None = None, expand: bool = False) -> None:
        self.parts = parts
        self.pos = pos
        self.end = end
        self.start = start
        self.const = const
        self.braced = braced
        self.body_pos = body_pos
        self.script = script
        self.raw = raw
        self.source = source
        self.expand = expand


class Command(Record):
    __slots__ = ("words", "pos", "source", "depth", "expands", "plan", "__weakref__")
    _fields = ("words", "pos", "source", "depth", "expands")  # `plan` is neither compared nor shown
    words: list[Word]
    pos: Pos
    source: Source
    depth: int  # how deeply brackets and array indexes nest inside its words
    expands: bool  # some word is {*}word
    plan: Any  # its compiled closure, made at its first run (psched.lang.compile)

    def __init__(self, words: list[Word], pos: Pos, source: Source, depth: int = 0, expands: bool = False,
                 plan: Any = None) -> None:
        self.words = words
        self.pos = pos
        self.source = source
        self.depth = depth
        self.expands = expands
        self.plan = plan

    @property
    def name(self) -> str:
        first = self.words[0]
        return first.const if first.const is not None else "?"

    def source_line(self) -> str:
        return self.source.line(self.pos.line)

    def text_of(self, first: int, last: int | None = None) -> str:
        """The source text of words[first:last] (as written, before substitution)."""
        words = self.words[first:last]
        if not words:
            return ""
        return self.source.text[words[0].start:words[-1].end]


class Clause(Record):
    """An `elif EXPR` or `else` part of an if-block."""

    __slots__ = _fields = ("header", "body")
    header: Command
    body: "Script"

    def __init__(self, header: Command, body: "Script") -> None:
        self.header = header
        self.body = body


class Block(Record):
    """A block opened by a header line and closed by `end`."""

    __slots__ = ("header", "body", "clauses", "end_pos", "plan", "__weakref__")
    _fields = ("header", "body", "clauses", "end_pos")  # `plan` is neither compared nor shown
    header: Command
    body: "Script"
    clauses: list[Clause]
    end_pos: Pos | None
    plan: Any  # its compiled closure, made at its first run (psched.lang.compile)

    def __init__(self, header: Command, body: "Script", clauses: list[Clause] | None = None,
                 end_pos: Pos | None = None) -> None:
        self.header = header
        self.body = body
        self.clauses = [] if clauses is None else clauses
        self.end_pos = end_pos
        self.plan = None

    @property
    def pos(self) -> Pos:
        return self.header.pos

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def words(self) -> list[Word]:
        return self.header.words


class Script(Record):
    __slots__ = ("commands", "source", "depth", "code")
    _fields = ("commands", "source", "depth")  # `code` is neither compared nor shown
    commands: list  # of Command | Block
    source: Source
    depth: int  # how deeply blocks, brackets and array indexes nest inside it
    code: Any  # its compiled closure, made at its first run (psched.lang.compile)

    def __init__(self, commands: list, source: Source, depth: int = 0) -> None:
        self.commands = commands
        self.source = source
        self.depth = depth
        self.code = None

    def walk(self) -> Iterator[Command]:
        """Every command and block header in it, at any depth of blocks (not inside brackets)."""
        for node in self.commands:
            if isinstance(node, Block):
                yield node.header
                yield from node.body.walk()
                for clause in node.clauses:
                    yield from clause.body.walk()
            elif node.words:
                yield node
