"""The syntax tree of the sched language: dataclasses with source positions.

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

from dataclasses import dataclass, field
from typing import Any, Union

from .errors import Pos


@dataclass(slots=True)
class Source:
    """A text the parser read, kept so that errors can show the offending line.

    A braced body parsed later is a Source of its own whose first character stands at
    (line0, col0) of the file, so that positions stay absolute; its `parent` is the source it
    was cut from, which has the whole lines.
    """

    file: str
    text: str
    line0: int = 1
    col0: int = 1
    _lines: list[str] | None = None
    parent: "Source | None" = None

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


@dataclass(slots=True)
class Text:
    value: str


@dataclass(slots=True)
class VarRef:
    name: str
    index: "Word | None"
    pos: Pos


@dataclass(slots=True)
class CmdSub:
    script: "Script"
    pos: Pos


Part = Union[Text, VarRef, CmdSub]


@dataclass(slots=True)
class Word:
    """One word of a command.

    `parts` are substituted and joined at run time. `const` is the word's value when it needs
    no substitution (bare text or a braced word). `braced` marks a `{...}` word; its `body_pos`
    is where the text inside the braces starts, so that a body parsed later reports absolute
    positions. `raw` is the text between the braces as written when it differs from `const`
    (a backslash-newline inside braces becomes a space in the value, but a body is parsed from
    the text as written so that its line numbers stay those of the file). `source` is the
    text a braced word was parsed from. `script` caches its parse as a body.
    """

    parts: tuple
    pos: Pos
    end: int  # offset just past the word in its source text
    start: int  # offset of the word's first character in its source text
    const: str | None = None
    braced: bool = False
    body_pos: Pos | None = None
    script: "Script | None" = None
    raw: str | None = None
    source: Source | None = None
    expand: bool = False  # {*}word: its value is a list whose elements become words


@dataclass(slots=True, weakref_slot=True)
class Command:
    words: list[Word]
    pos: Pos
    source: Source
    depth: int = 0  # how deeply brackets and array indexes nest inside its words
    expands: bool = False  # some word is {*}word
    plan: Any = field(default=None, compare=False, repr=False)  # its compiled closure, made at its first run (psched.lang.compile)

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


@dataclass(slots=True)
class Clause:
    """An `elif EXPR` or `else` part of an if-block."""

    header: Command
    body: "Script"


@dataclass(slots=True, weakref_slot=True)
class Block:
    """A block opened by a header line and closed by `end`."""

    header: Command
    body: "Script"
    clauses: list[Clause] = field(default_factory=list)
    end_pos: Pos | None = None
    plan: Any = field(default=None, compare=False, repr=False)  # its compiled closure, made at its first run (psched.lang.compile)

    @property
    def pos(self) -> Pos:
        return self.header.pos

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def words(self) -> list[Word]:
        return self.header.words


@dataclass(slots=True)
class Script:
    commands: list  # of Command | Block
    source: Source
    depth: int = 0  # how deeply blocks, brackets and array indexes nest inside it
    code: Any = field(default=None, compare=False, repr=False)  # its compiled closure, made at its first run (psched.lang.compile)
