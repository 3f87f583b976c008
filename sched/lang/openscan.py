"""Which braces, quotes, brackets and array parentheses are open: a small scan by Tcl's rules.

    Scan().feed(text).open -> [(kind, offset), ...]     kind is "{", '"', "[" or "("

The scan is resumable: `feed` takes the text a piece at a time (the shell gives it a line at a
time) and a Scan is immutable, so a state kept at the start of each line costs nothing to keep.
psched.lang.parser uses it to explain a parse that ran out of input; psched.lang.openness to follow a
growing text without scanning it again from the start.
"""

from __future__ import annotations

from .lazyre import lazy_compile
from .record import Frozen

__all__ = ["Scan"]

_ARRAY_START = lazy_compile(r"\$(::)?[A-Za-z0-9_]+(::[A-Za-z0-9_]+)*\(")


class Scan(Frozen):
    """The scan's state after the text fed so far.

    `stack` holds the open constructs as (kind, absolute offset); `carry` is text fed but not yet
    decided (a `${` whose `}` has not come yet), starting at offset `base`; `skip` counts the
    characters of the next piece already consumed (the character after a final backslash).
    """

    __slots__ = _fields = ("stack", "base", "carry", "skip", "cmd_start", "word_start", "in_comment", "waiting_brace")
    stack: tuple[tuple[str, int], ...]
    base: int
    carry: str
    skip: int
    cmd_start: bool
    word_start: bool
    in_comment: bool
    waiting_brace: bool

    def __init__(self, stack: tuple[tuple[str, int], ...] = (), base: int = 0, carry: str = "", skip: int = 0,
                 cmd_start: bool = True, word_start: bool = True, in_comment: bool = False,
                 waiting_brace: bool = False) -> None:
        put = object.__setattr__
        put(self, "stack", stack)
        put(self, "base", base)
        put(self, "carry", carry)
        put(self, "skip", skip)
        put(self, "cmd_start", cmd_start)
        put(self, "word_start", word_start)
        put(self, "in_comment", in_comment)
        put(self, "waiting_brace", waiting_brace)

    @property
    def open(self) -> list[tuple[str, int]]:
        """What is open, innermost last (an undecided `${` counts as an open brace)."""
        if self.waiting_brace:
            return list(self.stack) + [("{", self.base + 1)]
        return list(self.stack)

    def feed(self, piece: str) -> "Scan":
        """The state after `piece` follows the text fed so far."""
        text = self.carry + piece
        stack = list(self.stack)
        base = self.base
        i, n = self.skip, len(text)
        cmd_start, word_start, in_comment = self.cmd_start, self.word_start, self.in_comment
        while i < n:
            c = text[i]
            if in_comment:
                if c == "\n":
                    in_comment = False
                    continue
                i += 2 if c == "\\" else 1
                continue
            top = stack[-1][0] if stack else None
            if c == "\\":
                i += 2
                cmd_start = word_start = False
                continue
            if top == "{":
                if c == "{":
                    stack.append(("{", base + i))
                elif c == "}":
                    stack.pop()
                i += 1
                continue
            if top == '"' and c not in '"[$':
                i += 1
                continue
            if c == '"' and top == '"':
                stack.pop()
            elif c in " \t\r\f\v" and top != '"':
                word_start = True
                i += 1
                continue
            elif c in "\n;" and top != '"':
                cmd_start = word_start = True
                i += 1
                continue
            elif c == "#" and cmd_start and top in (None, "["):
                in_comment = True
                continue
            elif c == "[":
                stack.append(("[", base + i))
                cmd_start = word_start = True
                i += 1
                continue
            elif c == "]" and top == "[":
                stack.pop()
            elif c == ")" and top == "(":
                stack.pop()
            elif c == "{" and word_start and top != "(":
                stack.append(("{", base + i))
            elif c == '"' and word_start and top != "(":
                stack.append(('"', base + i))
            elif c == "$":
                m = _ARRAY_START.match(text, i)
                if m:
                    stack.append(("(", base + m.end() - 1))
                    i = m.end()
                    cmd_start = word_start = False
                    continue
                if text.startswith("${", i):
                    close = text.find("}", i)
                    if close < 0:  # undecided until the `}` comes: keep the text from the `$`
                        return Scan(tuple(stack), base + i, text[i:], 0, cmd_start, word_start, False, True)
                    i = close + 1
                    cmd_start = word_start = False
                    continue
            cmd_start = word_start = False
            i += 1
        return Scan(tuple(stack), base + n, "", i - n, cmd_start, word_start, in_comment, False)

    @property
    def balanced(self) -> bool:
        """Nothing open and nothing undecided."""
        return not self.stack and not self.waiting_brace

    def restart(self) -> "Scan":
        """The same position, as at the start of a new command (after a complete piece)."""
        return Scan(self.stack, self.base, self.carry, self.skip, True, True, self.in_comment, self.waiting_brace)
