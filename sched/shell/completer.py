"""Tab completion for the sched shell: what may stand at the cursor, from the usage lines.

    complete(interp, text_before_cursor) -> (word being completed, [Candidate, ...])
    SchedCompleter(interp)                  the prompt_toolkit Completer around it

What is offered depends on where the cursor stands in the current command (found by a small
scan that follows quotes, braces and brackets, so `[` and braced bodies start commands too):

    first word           command names (and the block words end/elif/else), with their help
    after an ensemble    its subcommand names (`string le<Tab>`), nested ensembles too
    a word with `-`      the options of the command's usage line not used yet
    after `$` / `${`     variable names; after `$name(` the keys of that array
    a parameter          by its name in the usage line: varName/arrayName -> variables,
                         command -> commands, subcommand -> that command's subcommands,
                         file/path -> file names; queue commands -> queue names
    anything else        whatever the extension completers offer

Extension completers let later parts add task names, job ids and host names without touching
this module. Each is a callable `(interp, words, current) -> iterable of str` (or of Candidate),
where `words` are the words of the current command before the cursor, as typed (no
substitution), and `current` is the partial word. Candidates are filtered by the prefix here,
so a completer may return everything it knows. Register one with

    add_completer(interp, fn)      # = interp.completers.append(fn)

A completer that raises is logged and skipped: completion never breaks the prompt.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..lang.parser import CLAUSE_WORDS
from ..lang.registry import CommandDef, Usage

log = logging.getLogger(__name__)

__all__ = ["Candidate", "CompletionContext", "add_completer", "analyse", "complete",
           "SchedCompleter"]


BLOCK_WORDS = ("end", *CLAUSE_WORDS)
"""Words that may start a line but are not commands: they close or continue blocks."""

ExtensionCompleter = Callable[[Any, list[str], str], Iterable["str | Candidate"]]


@dataclass(frozen=True)
class Candidate:
    """One completion: the text that replaces the current word, and a short description."""

    text: str
    meta: str = ""


def add_completer(interp: Any, fn: ExtensionCompleter) -> None:
    """Add an extension completer `(interp, words, current) -> iterable of str`."""
    interp.completers.append(fn)


# --- where is the cursor ---------------------------------------------------------------------------


@dataclass
class CompletionContext:
    """The command the cursor is in: its earlier words and the partial word at the cursor."""

    words: list[str] = field(default_factory=list)
    current: str = ""
    variable: str | None = None  # completing a variable name ($na|), the prefix
    array: str | None = None  # completing a key of this array ($env(HO|)


@dataclass
class _Level:
    """One command being scanned: at the top, inside `[...]` or inside a braced body."""

    closer: str  # "" at the top, "]" or "}"
    words: list[str] = field(default_factory=list)
    word_start: int | None = None  # offset where the word now being read began
    quoted: bool = False  # inside "..." of the current word
    braces: int = 0  # braces opened inside a word (`a{b}`): their `}` closes nothing

    def end_word(self, text: str, i: int) -> None:
        if self.word_start is not None:
            self.words.append(text[self.word_start:i])
            self.word_start = None

    def end_command(self) -> None:
        self.words = []
        self.word_start = None


_VAR_PREFIX = re.compile(r"\$\{?((?:::)?[A-Za-z0-9_]*(?:::[A-Za-z0-9_]*)*)$")
_ARRAY_KEY_PREFIX = re.compile(r"\$((?:::)?[A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)*)\(([^()$\[\]\s]*)$")


def _escaped(text: str, i: int) -> bool:
    """True when the character at offset i is preceded by an odd number of backslashes."""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def analyse(text: str) -> CompletionContext:
    """Find the current command's words and the partial word at the end of `text`."""
    stack = [_Level("")]
    i, n = 0, len(text)
    while i < n:
        level = stack[-1]
        c = text[i]
        if c == "\\":
            if level.word_start is None:
                level.word_start = i
            i += 2
            continue
        if level.quoted:
            if c == '"':
                level.quoted = False
            elif c == "[":
                stack.append(_Level("]"))
            i += 1
            continue
        if c in " \t":
            level.end_word(text, i)
        elif c in "\n;":
            level.end_command()
        elif c == "#" and level.word_start is None and not level.words:
            end = text.find("\n", i)
            if end < 0:  # the cursor is in a comment: nothing to complete
                return CompletionContext(words=["#"], current="")
            i = end
            continue
        elif c == "[":
            if level.word_start is None:
                level.word_start = i
            stack.append(_Level("]"))
        elif c == "{" and level.word_start is None:
            level.word_start = i
            stack.append(_Level("}"))
        elif c == "{":
            level.braces += 1
        elif c == "}" and level.braces:
            level.braces -= 1
        elif c in "]}" and level.closer == c and len(stack) > 1:
            stack.pop()
        else:
            if level.word_start is None:
                level.word_start = i
                if c == '"':
                    level.quoted = True
        i += 1
    level = stack[-1]
    current = text[level.word_start:] if level.word_start is not None else ""
    if current.startswith('"'):
        current = current[1:]
    context = CompletionContext(words=list(level.words), current=current)
    m = _ARRAY_KEY_PREFIX.search(text)
    if m and not _escaped(text, m.start()):
        context.array, context.current = m.group(1), m.group(2)
        return context
    m = _VAR_PREFIX.search(text)
    if m and not _escaped(text, m.start()):
        context.variable = context.current = m.group(1)
    return context


# --- what may stand there ----------------------------------------------------------------------------


def complete(interp: Any, text: str) -> tuple[str, list[Candidate]]:
    """The partial word at the end of `text` and the sorted candidates that may replace it."""
    context = analyse(text)
    current = context.current
    if context.words[:1] == ["#"]:
        return current, []
    if context.array is not None:
        found: Iterable[Candidate] = _array_keys(interp, context.array)
    elif context.variable is not None:
        found = (Candidate(name, "variable") for name in interp.visible_vars())
    elif not context.words:
        found = _command_names(interp)
    else:
        found = _argument_candidates(interp, context.words, current)
    seen: dict[str, Candidate] = {}
    for cand in found:
        if cand.text.startswith(current) and cand.text not in seen:
            seen[cand.text] = cand
    return current, [seen[key] for key in sorted(seen)]


def _command_names(interp: Any, block_words: bool = True) -> Iterator[Candidate]:
    for name, cdef in interp.commands.items():
        yield Candidate(name, _first_line(cdef.help))
    if block_words:
        for word in BLOCK_WORDS:
            yield Candidate(word, "block word")


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _array_keys(interp: Any, name: str) -> Iterator[Candidate]:
    try:
        array = interp.array(name)
    except Exception:  # a name the interpreter refuses: nothing to offer
        return
    for key in array or ():
        yield Candidate(key, f"{name}()")


def _resolve(interp: Any, words: list[str]) -> tuple[CommandDef | None, int]:
    """The command (or nested subcommand) the words name, and how many words name it."""
    cdef = interp.commands.get(words[0])
    depth = 1
    while cdef is not None and cdef.subcommands and depth < len(words):
        table = cdef.subcommands
        word = words[depth]
        sub = table.get(word)
        if sub is None:
            matches = [name for name in table if name.startswith(word)] if word else []
            sub = table[matches[0]] if len(matches) == 1 else None
        if sub is None:
            return None, depth
        cdef = sub
        depth += 1
    return cdef, depth


def _argument_candidates(interp: Any, words: list[str], current: str) -> Iterator[Candidate]:
    cdef, depth = _resolve(interp, words)
    if cdef is not None:
        if cdef.subcommands and depth == len(words):
            for name, sub in cdef.subcommands.items():
                yield Candidate(name, _first_line(sub.help))
            return
        if current.startswith("-"):
            used = set(words[depth:])
            for option in cdef.usage.options:
                if option not in used:
                    yield Candidate(option, "option")
        else:
            yield from _parameter_candidates(interp, cdef.usage, words, depth, current)
    yield from _extension_candidates(interp, words, current)


def _parameter_candidates(interp: Any, usage: Usage, words: list[str], depth: int, current: str) -> Iterator[Candidate]:
    param, earlier = _parameter_at(usage, words[depth:])
    if param is None:
        return
    kind = param.lower()
    if kind in ("varname", "arrayname", "var", "variable") or kind.endswith("varname"):
        for name in interp.visible_vars():
            yield Candidate(name, "variable")
    elif kind in ("command", "cmdname", "commandname"):
        yield from _command_names(interp, block_words=False)
    elif kind == "subcommand" and earlier:
        owner = interp.commands.get(earlier[-1])
        for name, sub in ((owner.subcommands or {}) if owner else {}).items():
            yield Candidate(name, _first_line(sub.help))
    elif kind in ("file", "filename", "path", "dir", "directory"):
        yield from _file_names(current)
    elif words[0].startswith("queue") and not earlier:
        for name in getattr(interp, "queues", {}):
            yield Candidate(name, "queue")


_GROUP = re.compile(r"^\?(.*)\?$")


def _parameter_at(usage: Usage, args: list[str]) -> tuple[str | None, list[str]]:
    """The usage-line name of the argument being typed after `args`, and the positional args before it.

    Options are skipped, with their value when the usage line gives one (`?-key N?`).
    """
    positional: list[str] = []  # parameter names in order
    value_of: dict[str, str] = {}  # option -> the name of its value
    variadic = False
    for token in usage.params:
        inner = _GROUP.sub(r"\1", token).split()
        if not inner:
            continue
        if inner[0].startswith("-"):
            if len(inner) > 1 and not inner[1].startswith("-") and inner[1] != "...":
                for option in inner[0].split("|"):
                    value_of[option] = inner[1]
            continue
        positional.append(inner[0])
        variadic = inner[-1] == "..." or token.endswith("...?") or inner[0] == "args"
    if args and args[-1] in value_of:
        option = args[-1]
        return ("varName" if option in ("-var", "-variable") else value_of[option]), []
    earlier: list[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
        elif word in value_of:
            skip = True
        elif word.startswith("-") and word in usage.options:
            pass
        else:
            earlier.append(word)
    index = len(earlier)
    if index < len(positional):
        return positional[index], earlier
    if positional and variadic:
        return positional[-1], earlier
    return None, earlier


def _file_names(current: str) -> Iterator[Candidate]:
    directory, _, _ = current.rpartition("/")
    if current.startswith("/") and not directory:
        directory = "/"
    where = os.path.expanduser(directory) if directory else "."
    try:
        entries = os.listdir(where)
    except OSError:
        return
    prefix = "" if not directory else (directory if directory.endswith("/") else directory + "/")
    for entry in entries:
        full = os.path.join(where, entry)
        yield Candidate(prefix + entry + ("/" if os.path.isdir(full) else ""), "")


def _extension_candidates(interp: Any, words: list[str], current: str) -> Iterator[Candidate]:
    for fn in list(interp.completers):
        try:
            for item in fn(interp, list(words), current):
                yield item if isinstance(item, Candidate) else Candidate(str(item))
        except Exception:
            log.exception("completer %r failed", fn)


# --- prompt_toolkit ----------------------------------------------------------------------------------


class SchedCompleter(Completer):
    """prompt_toolkit's view of `complete`: replaces the partial word before the cursor."""

    def __init__(self, interp: Any):
        self.interp = interp

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        current, found = complete(self.interp, document.text_before_cursor)
        for cand in found:
            yield Completion(cand.text, start_position=-len(current), display_meta=cand.meta or None)
