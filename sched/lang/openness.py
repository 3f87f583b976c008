"""What is still open in a growing text, each line looked at once: the prompt's and a pipe's question.

    tracker = OpenTracker()
    tracker.at_end(text) -> IncompleteError | None       what is open at the end (None: complete)
    tracker.opener_at(text, line) -> str | None          what is open at the start of line (0-based)

The answer is the one psched.lang.parser.parse gives (is_complete), found without parsing the text
again on every line: pasting 2,000 lines into the prompt used to parse the whole buffer at
every Enter and again for every continuation prompt drawn.

The tracker keeps a state at the start of every line it has seen. Lines are cut into chunks
where no brace, quote or bracket is open (psched.lang.openscan follows those, resumably); each chunk
is parsed once by lark (psched.lang.parser.parse_commands) and its commands move a small stack of
open blocks by the parser's own tables (BLOCK_OPENERS, CLAUSE_WORDS). A text that extends the
one seen before (the usual case: the user typed another line) costs only its new lines; an
edit further up starts again from the line where the texts part.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from .errors import IncompleteError, ParseError, Pos
from .openscan import Scan
from .record import Frozen
from .parser import BLOCK_OPENERS, CLAUSE_WORDS, MAX_NESTING, clause_problem, parse_commands

__all__ = ["OpenTracker", "needs_more"]

_WHAT = {"{": "close-brace", '"': "close-quote", "[": "close-bracket `]`", "(": "close-paren `)` of an array index"}
_FILE = "<input>"


class _Block(Frozen):
    __slots__ = _fields = ("name", "line", "last_clause", "body_head")
    name: str
    line: int  # 1-based, of the header
    last_clause: str | None  # the last clause line's keyword so far
    body_head: Any  # the first line of its body before any clause (a switch refuses one)

    def __init__(self, name: str, line: int, last_clause: str | None = None, body_head: Any = None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "last_clause", last_clause)
        object.__setattr__(self, "body_head", body_head)


class _State(Frozen):
    """What is open at the start of a line."""

    __slots__ = _fields = ("chunk_line", "scan", "blocks", "broken", "unfinished")
    chunk_line: int  # the line where the unfinished chunk began (== this line: none unfinished)
    scan: Scan  # the brace/quote/bracket scan of the unfinished chunk
    blocks: tuple[_Block, ...]
    broken: bool  # a parse error was met: more lines cannot make the text parse
    unfinished: IncompleteError | None  # lark ran out of input where the scan did not

    def __init__(self, chunk_line: int, scan: Scan, blocks: tuple[_Block, ...] = (), broken: bool = False,
                 unfinished: IncompleteError | None = None) -> None:
        object.__setattr__(self, "chunk_line", chunk_line)
        object.__setattr__(self, "scan", scan)
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "broken", broken)
        object.__setattr__(self, "unfinished", unfinished)

    @property
    def opener(self) -> str | None:
        if self.broken:
            return None
        still = self.scan.open
        if still:
            return still[-1][0]
        if self.unfinished is not None:
            return self.unfinished.opener
        if self.blocks:
            return self.blocks[-1].name
        return None


def _step_blocks(blocks: tuple[_Block, ...], commands: list) -> tuple[tuple[_Block, ...], bool]:
    """Move the stack of open blocks over `commands`, as psched.lang.parser._build_blocks does
    (with its own clause rules, clause_problem). Returns the new stack and whether a parse
    error was met."""
    stack = list(blocks)
    for command in commands:
        words = command.words
        if len(stack) + command.depth > MAX_NESTING:
            return tuple(stack), True
        name = words[0].const
        if name == "end" and len(words) == 1:
            if not stack:
                return tuple(stack), True
            stack.pop()
            continue
        if name in CLAUSE_WORDS:
            owner = CLAUSE_WORDS[name]
            if stack and stack[-1].name == owner:
                top = stack[-1]
                if clause_problem(top.name, top.line, top.last_clause, top.body_head, command) is not None:
                    return tuple(stack), True
                stack[-1] = _Block(top.name, top.line, name, top.body_head)
                continue
            if owner == "if" and (name == "else" or len(words) < 3):
                return tuple(stack), True
        if stack and stack[-1].last_clause is None and stack[-1].body_head is None:
            top = stack[-1]
            stack[-1] = _Block(top.name, top.line, None, command)
        opens = BLOCK_OPENERS.get(name) if name is not None else None
        if opens is not None and opens(words):
            stack.append(_Block(name, command.pos.line))
    return tuple(stack), False


def _ends_with_backslash(line: str) -> bool:
    body = line.rstrip("\r\n")
    return (len(body) - len(body.rstrip("\\"))) % 2 == 1


class OpenTracker:
    """States at the start of each line of the last text seen; see the module docstring."""

    def __init__(self) -> None:
        self._text = ""  # the complete lines seen, each with its newline
        self._lines: list[str] = []
        self._starts: list[int] = [0]  # offset of each line's start in _text, and of its end
        self._states: list[_State] = [_State(0, Scan())]
        self._memo: tuple[_State, str, _State] | None = None  # the last partial line's parse
        self._seen: str | None = None  # the last text followed, and its last partial line
        self._seen_last = ""

    # --- the questions -----------------------------------------------------------------------

    def at_end(self, text: str) -> IncompleteError | None:
        """What is open at the end of `text`, as psched.lang.parser.is_complete says it (None: nothing)."""
        last = self._follow(text)
        state = self._states[-1]
        if state.broken:
            return None
        if last:
            if _ends_with_backslash(last) and state.scan.feed(last).balanced:
                pos = self._pos(text, len(text) - 1)
                return IncompleteError("backslash at the end of the script", pos=pos, opener="\\", opened_at=pos)
            state = self._advance(state, last, len(self._lines), complete_line=False)
            if state.broken:
                return None
        elif self._continued(len(self._lines)):
            pos = self._pos(text, len(text) - 1)
            return IncompleteError("backslash at the end of the line", pos=pos, opener="\\", opened_at=pos)
        return self._report(state, text)

    def parses(self, text: str) -> bool:
        """Does `text` parse, as far as the lines seen tell? False when a parse error was met (a
        whole parse then says where); True otherwise, also when something is still open."""
        last = self._follow(text)
        state = self._states[-1]
        if not state.broken and last:
            state = self._advance(state, last, len(self._lines), complete_line=False)
        return not state.broken

    def opener_at(self, text: str, line: int) -> str | None:
        """What is open at the start of line `line` (0-based) of `text`: a block keyword, a
        bracket character, "\\" after a backslash-newline; None when nothing is."""
        self._follow(text)
        if line >= len(self._states):
            return None
        opener = self._states[line].opener
        if opener is None and self._continued(line):
            return "\\"
        return opener

    def _continued(self, line: int) -> bool:
        """Does line `line` (0-based) continue the one before it after a backslash-newline?"""
        state = self._states[line]
        return (line > 0 and not state.broken and state.chunk_line < line and state.scan.balanced
                and _ends_with_backslash(self._lines[line - 1]))

    # --- following the text ------------------------------------------------------------------

    def _follow(self, text: str) -> str:
        """Bring the states up to the complete lines of `text`; returns its last, partial line."""
        if text is self._seen:  # the same buffer asked again (a prompt drawn line by line)
            return self._seen_last
        if not text.startswith(self._text):
            self._cut(text)
        done = len(self._text)
        cut = text.rfind("\n") + 1
        if cut > done:
            first = len(self._lines)
            for line in text[done:cut].split("\n")[:-1]:
                self._lines.append(line + "\n")
                self._starts.append(self._starts[-1] + len(line) + 1)
            self._text = text[:cut]
            states = self._batch(first) if len(self._lines) - first > 8 else None
            if states is None:
                state = self._states[-1]
                states = []
                for index in range(first, len(self._lines)):
                    state = self._advance(state, self._lines[index], index, complete_line=True)
                    states.append(state)
            self._states.extend(states)
        self._seen, self._seen_last = text, text[max(cut, done):]
        return self._seen_last

    def _batch(self, first: int) -> list[_State] | None:
        """The states after the lines from `first` on, with one lark parse for all their chunks.

        None when the lines hold something the line-at-a-time way must look at (an error).
        """
        start = self._states[-1]
        if start.broken or start.unfinished is not None:
            return None
        # pass 1: the scan, line by line, says where chunks end
        pending: list[tuple[int, Scan] | None] = []  # per line: (chunk's first line, scan) or None at a chunk's end
        scan, chunk_line, last_end = start.scan, start.chunk_line, None
        for index in range(first, len(self._lines)):
            line = self._lines[index]
            scan = scan.feed(line)
            if scan.balanced and not scan.skip and not _ends_with_backslash(line):
                pending.append(None)
                scan, chunk_line, last_end = Scan(base=scan.base), index + 1, index
            else:
                pending.append((chunk_line, scan))
        commands: list = []
        if last_end is not None:
            region = self._text[self._starts[start.chunk_line]:self._starts[last_end + 1]]
            try:
                commands = parse_commands(region, _FILE, start.chunk_line + 1)
            except ParseError:  # IncompleteError included: the scan and lark disagree
                return None
        # pass 2: the blocks open at each chunk's end, from the commands that start before it
        states: list[_State] = []
        blocks, at = start.blocks, 0
        for index, item in zip(range(first, len(self._lines)), pending):
            if item is not None:
                states.append(_State(item[0], item[1], blocks))
                continue
            upto = at
            while upto < len(commands) and commands[upto].pos.line <= index + 1:
                upto += 1
            blocks, broken = _step_blocks(blocks, commands[at:upto])
            if broken:
                return None
            at = upto
            states.append(_State(index + 1, Scan(base=self._starts[index + 1]), blocks))
        return states

    def _cut(self, text: str) -> None:
        """Forget the lines from the first one `text` does not share with the text seen before."""
        lo, hi = 0, len(self._lines)  # the longest shared run of whole lines, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if text.startswith(self._text[: self._starts[mid]]):
                lo = mid
            else:
                hi = mid - 1
        del self._lines[lo:]
        del self._starts[lo + 1:]
        del self._states[lo + 1:]
        self._text = self._text[: self._starts[lo]]

    def _advance(self, state: _State, line: str, index: int, complete_line: bool) -> _State:
        """The state after `line` (line number `index`, 0-based) follows `state`."""
        if state.broken:
            return state
        scan = state.scan.feed(line)
        continued = complete_line and _ends_with_backslash(line)
        if not scan.balanced or scan.skip or continued:
            return _State(state.chunk_line, scan, state.blocks)
        chunk = self._text[self._starts[state.chunk_line]:self._starts[index]] + line
        memo = self._memo
        if complete_line and memo is not None and memo[0] is state and memo[1] == chunk[:-1]:
            # Enter asked about this line a moment ago, before its newline: same commands
            return _State(index + 1, Scan(base=scan.base), memo[2].blocks, memo[2].broken)
        try:
            commands = parse_commands(chunk, _FILE, state.chunk_line + 1)
        except IncompleteError as err:  # the scan missed something lark sees: keep the chunk open
            return _State(state.chunk_line, scan, state.blocks, unfinished=err)
        except ParseError:
            return _State(index + 1, Scan(), state.blocks, broken=True)
        blocks, broken = _step_blocks(state.blocks, commands)
        after = _State(index + 1, Scan(base=scan.base), blocks, broken)
        if not complete_line:
            self._memo = (state, chunk, after)
        return after

    # --- answers -------------------------------------------------------------------------------

    def _pos(self, text: str, offset: int) -> Pos:
        line = text.count("\n", 0, offset)
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        return Pos(_FILE, line + 1, column)

    def _report(self, state: _State, text: str) -> IncompleteError | None:
        still = state.scan.open
        if still:
            kind, offset = still[-1]
            at = self._pos(text, offset)
            return IncompleteError(f"missing {_WHAT[kind]} (opened at line {at.line}, column {at.column})",
                                   pos=at, opener=kind, opened_at=at)
        if state.unfinished is not None:
            return state.unfinished
        if state.blocks:
            block = state.blocks[-1]
            at = Pos(_FILE, block.line, 1)
            return IncompleteError(f"missing `end` for `{block.name}` opened at line {block.line}",
                                   pos=at, opener=block.name, opened_at=at)
        return None


_shared = OpenTracker()


def needs_more(text: str, tracker: OpenTracker | None = None) -> IncompleteError | None:
    """What is still open at the end of `text` (a block, brace, quote, bracket, a backslash), if anything."""
    return (tracker or _shared).at_end(text)
