"""The LALR parser's engine: lark's contextual lexer and LALR loop over tables made in advance.

    parser = Parser(tables, builder)     # tables: the module psched.lang.lalr gives
    result = parser.parse(text)          # the builder's `start(children)`; raises UnexpectedInput

lark made the tables (psched.lang.lalr, at build time: lang/grammar/lalr.py); this runs them as
lark's own runtime does, step for step, so that a parse gives the same tokens, the same
reductions in the same order and the same errors:

- the lexer of the parser's current state tries its terminals as one alternation (in lark's
  order: priority, then width, then length of the pattern), skips the ignored ones, counts
  lines in the terminals that may hold a newline, and retypes a token whose text is one of the
  string terminals folded into the pattern that matched it (lark's "unless");
- when nothing of the state's terminals matches, the lexer of every terminal is tried from the
  same place: a token there is an UnexpectedToken, else the UnexpectedCharacters stands;
- a reduction hands the builder's method of the rule's name the children, less the filtered
  tokens (`_NAME`), with the children of `_rules` spliced in (their own reductions make lists).

Importing it costs little: no lark, no typing machinery, no dataclasses (start-up, issue 13).
"""

from __future__ import annotations

import re

__all__ = ["Parser", "Token", "UnexpectedInput", "UnexpectedCharacters", "UnexpectedToken", "UnexpectedEOF"]


class Token(str):
    """A token: its text, with its type and where it stands (lark's Token, as our parser reads it)."""

    __slots__ = ("type", "start_pos", "line", "column", "end_line", "end_column", "end_pos")

    def __new__(cls, type: str, value: str, start_pos: int | None = None, line: int | None = None,
                column: int | None = None, end_line: int | None = None, end_column: int | None = None,
                end_pos: int | None = None) -> "Token":
        token = super().__new__(cls, value)
        token.type = type
        token.start_pos = start_pos
        token.line = line
        token.column = column
        token.end_line = end_line
        token.end_column = end_column
        token.end_pos = end_pos
        return token

    @property
    def value(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {str(self)!r})"


class UnexpectedInput(Exception):
    """The text does not parse; `pos_in_stream` is the offset of the trouble (None: unknown)."""

    pos_in_stream: int | None = None
    line: int | None = None
    column: int | None = None


class UnexpectedCharacters(UnexpectedInput):
    """No terminal matches at `pos_in_stream`."""

    def __init__(self, text: str, pos: int, line: int, column: int, allowed: frozenset[str]) -> None:
        self.pos_in_stream, self.line, self.column, self.allowed = pos, line, column, allowed
        self.char = text[pos]
        super().__init__(f"No terminal matches {self.char!r} at line {line} col {column}")


class UnexpectedToken(UnexpectedInput):
    """A token the parser's state cannot take (`$END`: the text ended too soon)."""

    def __init__(self, token: Token, expected: set[str]) -> None:
        self.token, self.expected = token, expected
        self.pos_in_stream, self.line, self.column = token.start_pos, token.line, token.column
        super().__init__(f"Unexpected token {token!r} at line {token.line}, column {token.column}")


class UnexpectedEOF(UnexpectedInput):
    """(lark's Earley parser only: never raised here; kept so that callers name one family.)"""


class _Lexer:
    """One state's terminals (lark's BasicLexer); its patterns are compiled when first used, as
    lark does: a run meets a few of the parser's states."""

    __slots__ = ("_patterns", "_unless", "_mres", "_unless_res", "newline_types", "ignore_types", "allowed")

    def __init__(self, spec: tuple) -> None:
        self._patterns, self._unless, newline_types, ignore_types, allowed = spec
        self._mres: list | None = None
        self._unless_res: dict = {}
        self.newline_types = frozenset(newline_types)
        self.ignore_types = frozenset(ignore_types)
        self.allowed = frozenset(allowed)

    @property
    def mres(self) -> list:
        if self._mres is None:
            self._mres = [re.compile(pattern, flags) for pattern, flags in self._patterns]
        return self._mres

    def retype(self, token: Token) -> None:
        """lark's "unless": a token whose whole text is a string terminal folded into its pattern."""
        patterns = self._unless.get(token.type)
        if patterns is None:
            return
        compiled = self._unless_res.get(token.type)
        if compiled is None:
            compiled = self._unless_res[token.type] = [re.compile(p, flags) for p, flags in patterns]
        for mre in compiled:
            full = mre.fullmatch(token)
            if full:
                token.type = full.lastgroup
                return


class _Lexing:
    """Where the lexer is in the text (lark's LexerState and LineCounter)."""

    __slots__ = ("text", "pos", "line", "column", "line_start")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.column = 1
        self.line_start = 0

    def next_token(self, lexer: _Lexer) -> Token | None:
        """The next token that is not ignored, or None at the end of the text."""
        text, end = self.text, len(self.text)
        while self.pos < end:
            for mre in lexer.mres:
                m = mre.match(text, self.pos, end)
                if m:
                    break
            else:
                raise UnexpectedCharacters(text, self.pos, self.line, self.column, lexer.allowed - lexer.ignore_types)
            value, type_ = m.group(0), m.lastgroup
            ignored = type_ in lexer.ignore_types
            token = None if ignored else Token(type_, value, self.pos, self.line, self.column)
            if type_ in lexer.newline_types:
                newlines = value.count("\n")
                if newlines:
                    self.line += newlines
                    self.line_start = self.pos + value.rindex("\n") + 1
            self.pos += len(value)
            self.column = self.pos - self.line_start + 1
            if token is not None:
                token.end_line, token.end_column, token.end_pos = self.line, self.column, self.pos
                lexer.retype(token)
                return token
        return None


class Parser:
    """The grammar's LALR(1) parser with its contextual lexer; reductions call `builder`."""

    def __init__(self, tables, builder: object) -> None:
        lexers = [_Lexer(spec) for spec in tables.LEXERS]
        self._lexer_of = {state: lexers[i] for state, i in tables.LEXER_OF_STATE.items()}
        self._root = _Lexer(tables.ROOT_LEXER)
        self._states = tables.STATES
        self._start, self._end = tables.START_STATE, tables.END_STATE
        self._rules = []
        for origin, size, include in tables.RULES:
            build = getattr(builder, origin, None)  # as lark: the method of the rule's name, else a tree
            if build is None and not origin.startswith("_"):
                raise TypeError(f"{type(builder).__name__} has no method for rule {origin!r}")
            self._rules.append((origin, size, build, include))

    def parse(self, text: str):
        """What the builder makes of `text` (its `start` method's result)."""
        lexing = _Lexing(text)
        stack, values = [self._start], []
        token = None
        while True:
            lexer = self._lexer_of[stack[-1]]
            try:
                next_token = lexing.next_token(lexer)
            except UnexpectedCharacters as err:
                try:
                    found = lexing.next_token(self._root)
                except UnexpectedCharacters:
                    raise err from None
                if found is None:
                    raise err from None
                raise UnexpectedToken(found, set(err.allowed)) from None
            if next_token is None:
                break
            token = next_token
            self._feed(token, stack, values, False)
        end = (Token("$END", "", token.start_pos, token.line, token.column, token.end_line, token.end_column,
                     token.end_pos) if token is not None else Token("$END", "", 0, 1, 1))
        return self._feed(end, stack, values, True)

    def _feed(self, token: Token, stack: list, values: list, is_end: bool):
        states, rules = self._states, self._rules
        while True:
            try:
                shift, arg = states[stack[-1]][token.type]
            except KeyError:
                raise UnexpectedToken(token, {s for s in states[stack[-1]] if s.isupper()}) from None
            if shift:
                stack.append(arg)
                values.append(token)
                return None
            origin, size, build, include = rules[arg]
            if size:
                children = values[-size:]
                del stack[-size:]
                del values[-size:]
            else:
                children = []
            if include is not None:
                filtered: list = []
                for i, expand in include:
                    if expand:
                        if filtered:
                            filtered += children[i]
                        else:
                            filtered = children[i]
                    else:
                        filtered.append(children[i])
                children = filtered
            value = build(children) if build is not None else children  # a `_rule`: spliced by its parent
            stack.append(states[stack[-1]][origin][1])
            values.append(value)
            if is_end and stack[-1] == self._end:
                return values[-1]
