"""Queues: named FIFO lists of lines that pass work between tasks.

    queueinit NAME                        create the queue, or empty it; returns ""
    queuepush NAME ?-uniq? ?-key N[:N...]? LINE  add a line at the end; returns the new size
    queuepop NAME ?-var V?                take the first line
    queuesize NAME ?-var V?               the number of lines
    queuelist NAME                        the lines, as a Tcl list
    queuedelete NAME                      forget the queue
    queuenames ?PATTERN?                  the names of the queues (glob pattern)

`queuepush` creates a missing queue; the others say that it does not exist. With `-uniq`, a
line is not added when one already queued has the same key: with `-key N` its word N,
counted from 0 as Pan-STARRS scripts count (`-key 0` is the first word; a line with fewer
words has "" there), with `-key 1:2:4` those words together, else the whole line. The size
is returned either way, so the caller can tell. `-key` without `-uniq` is an error.

`queuepop NAME` returns the first line, or "" when the queue is empty. `queuepop NAME -var V`
sets V to the first line and returns 1, or sets V to "" and returns 0 when the queue is
empty, so that `while {[queuepop q -var line]} { ... }` drains a queue. `queuesize NAME -var V`
also sets V to the size.

The queues live in `interp.queues` (name -> WorkQueue). A WorkQueue is a deque of lines (so
`len`, iteration, indexing, `append` and `popleft` work, and `pop(0)` too) that keeps, for
each `-key` in use, a count of the keys queued, so `-uniq` costs O(1), not a scan. Code that
changes a WorkQueue with plain deque methods makes it drop those counts; they are rebuilt on
the next `-uniq` push.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, Iterable

from ..errors import ScriptError
from ..registry import BUILTINS
from ..tcllist import join_list
from ..args import set_arity
from ..patterns import glob_match


__all__ = ["WorkQueue", "line_key", "parse_columns", "get_queue"]

Columns = tuple[int, ...] | None
"""A -key: the word numbers (from 0) that make a line's key; None: the whole line."""

WHOLE_LINE: Columns = None


def line_key(line: str, key: Columns) -> str | tuple[str, ...]:
    """The key of a line: its words at the `key` columns (from 0; "" past its end), or the
    whole line for WHOLE_LINE."""
    if key is None:
        return line
    words = line.split(None, max(key) + 1)
    return tuple(words[k] if k < len(words) else "" for k in key)


def parse_columns(text: str) -> Columns:
    """`-key 0`, `-key 1:2:4`: word numbers from 0, joined by colons."""
    try:
        columns = tuple(int(part, 10) for part in text.split(":"))
    except ValueError:
        raise ScriptError(f'queuepush: -key wants word numbers from 0, joined by ":" (0, 2, 1:2:4), not "{text}"') from None
    if any(c < 0 for c in columns):
        raise ScriptError(f'queuepush: -key wants word numbers from 0 (0 is the first word), not "{text}"')
    return columns


class WorkQueue(deque):
    """A FIFO of lines with O(1) `-uniq` checks."""

    def __init__(self, lines: Iterable[str] = ()):
        super().__init__(lines)
        self._keys: dict[Columns, Counter] = {}  # -key -> how many queued lines have each key

    # the queue operations the commands use: they keep the key counts right

    def push(self, line: str, uniq: bool = False, key: Columns = WHOLE_LINE) -> bool:
        """Add a line at the end; with `uniq`, not when a line with the same key is queued."""
        if uniq:
            counts = self._counts(key)
            if counts[line_key(line, key)]:
                return False
        super().append(line)
        for k, counts in self._keys.items():
            counts[line_key(line, k)] += 1
        return True

    def take(self) -> str | None:
        """Remove and return the first line, or None when empty."""
        if not self:
            return None
        line = super().popleft()
        for k, counts in self._keys.items():
            kk = line_key(line, k)
            left = counts[kk] - 1
            if left:
                counts[kk] = left
            else:
                del counts[kk]
        return line

    def reset(self) -> None:
        super().clear()
        self._keys.clear()

    def _counts(self, key: Columns) -> Counter:
        counts = self._keys.get(key)
        if counts is None:
            counts = self._keys[key] = Counter(line_key(line, key) for line in self)
        return counts

    # plain deque changes: the key counts are no longer known

    def _forget(self) -> None:
        self._keys.clear()

    def append(self, line: str) -> None:  # type: ignore[override]
        self._forget()
        super().append(line)

    def appendleft(self, line: str) -> None:  # type: ignore[override]
        self._forget()
        super().appendleft(line)

    def extend(self, lines: Iterable[str]) -> None:  # type: ignore[override]
        self._forget()
        super().extend(lines)

    def extendleft(self, lines: Iterable[str]) -> None:  # type: ignore[override]
        self._forget()
        super().extendleft(lines)

    def insert(self, index: int, line: str) -> None:  # type: ignore[override]
        self._forget()
        super().insert(index, line)

    def remove(self, line: str) -> None:  # type: ignore[override]
        self._forget()
        super().remove(line)

    def popleft(self) -> str:  # type: ignore[override]
        self._forget()
        return super().popleft()

    def pop(self, index: int = -1) -> str:  # type: ignore[override]
        """Like list.pop: pop() the last line, pop(0) the first."""
        self._forget()
        if index == 0:
            return super().popleft()
        if index == -1:
            return super().pop()
        line = self[index]
        del self[index]
        return line

    def clear(self) -> None:
        self.reset()

    def __setitem__(self, index: Any, line: str) -> None:  # type: ignore[override]
        self._forget()
        super().__setitem__(index, line)

    def __delitem__(self, index: Any) -> None:  # type: ignore[override]
        self._forget()
        super().__delitem__(index)

    def __iadd__(self, lines: Iterable[str]) -> "WorkQueue":  # type: ignore[override]
        self._forget()
        super().extend(lines)
        return self

    def __reduce__(self) -> Any:
        return (WorkQueue, (list(self),))

    def __copy__(self) -> "WorkQueue":
        return WorkQueue(self)


def get_queue(interp: Any, name: str, create: bool = False) -> WorkQueue:
    """The queue called `name`; created when missing and `create`, else an error naming it.

    A plain list or deque put in `interp.queues` by other code is adopted as a WorkQueue.
    """
    queues = interp.queues
    queue = queues.get(name)
    if queue is None:
        if not create:
            raise ScriptError(f'queue "{name}" does not exist (queueinit or queuepush creates it)')
        queue = queues[name] = WorkQueue()
    elif type(queue) is not WorkQueue:
        queue = queues[name] = WorkQueue(queue)
    return queue


def _var_option(argv: list[str], command: str) -> str | None:
    """The V of a trailing `-var V`, or None."""
    if len(argv) == 2:
        return None
    if len(argv) == 4 and argv[2] == "-var":
        return argv[3]
    raise ScriptError(f'wrong # args: should be "{command} name ?-var varName?"')


@BUILTINS.command("queueinit name", "create a queue of lines, or empty it")
def cmd_queueinit(interp: Any, argv: list[str]) -> str:
    queue = interp.queues.get(argv[1])
    if type(queue) is WorkQueue:
        queue.reset()
    else:
        interp.queues[argv[1]] = WorkQueue()
    return ""


@BUILTINS.command("queuepush name ?-uniq? ?-key n[:n...]? line",
                  "add a line at the end of a queue (created if missing); -uniq skips one whose key is queued "
                  "(-key N: word N, from 0; -key 1:2:4: those words; else the whole line); returns the size")
def cmd_queuepush(interp: Any, argv: list[str]) -> str:
    uniq = False
    key = WHOLE_LINE
    has_key = False
    i = 2
    last = len(argv) - 1
    while i < last:
        word = argv[i]
        if word == "-uniq":
            uniq = True
            i += 1
        elif word == "-key" and i + 1 < last:
            key = parse_columns(argv[i + 1])
            has_key = True
            i += 2
        elif word == "--" and i + 1 == last:
            i += 1
        else:
            raise ScriptError(f'queuepush: bad option "{word}": must be -uniq or -key N[:N...]')
    if has_key and not uniq:
        raise ScriptError("queuepush: -key only makes sense with -uniq")
    queue = get_queue(interp, argv[1], create=True)
    queue.push(argv[last], uniq, key)
    return str(len(queue))


@BUILTINS.command("queuepop name ?-var varName?",
                  "take the first line of a queue (\"\" if empty); with -var, set the variable and return 1, or 0 if empty")
def cmd_queuepop(interp: Any, argv: list[str]) -> str:
    var = _var_option(argv, "queuepop")
    line = get_queue(interp, argv[1]).take()
    if var is None:
        return line if line is not None else ""
    interp.set_var(var, line if line is not None else "")
    return "0" if line is None else "1"


@BUILTINS.command("queuesize name ?-var varName?", "the number of lines in a queue (also set in the variable with -var)")
def cmd_queuesize(interp: Any, argv: list[str]) -> str:
    var = _var_option(argv, "queuesize")
    size = str(len(get_queue(interp, argv[1])))
    if var is not None:
        interp.set_var(var, size)
    return size


@BUILTINS.command("queuelist name", "the lines of a queue, first first, as a list")
def cmd_queuelist(interp: Any, argv: list[str]) -> str:
    return join_list(get_queue(interp, argv[1]))


@BUILTINS.command("queuedelete name", "forget a queue and its lines")
def cmd_queuedelete(interp: Any, argv: list[str]) -> str:
    get_queue(interp, argv[1])
    del interp.queues[argv[1]]
    return ""


@BUILTINS.command("queuenames ?pattern?", "the names of the queues (matching a glob pattern)")
def cmd_queuenames(interp: Any, argv: list[str]) -> str:
    pattern = argv[1] if len(argv) > 1 else "*"
    return join_list(sorted(n for n in interp.queues if glob_match(pattern, n)))


set_arity(BUILTINS.commands["queuepush"], 5)
set_arity(BUILTINS.commands["queuepop"], 3)
set_arity(BUILTINS.commands["queuesize"], 3)
