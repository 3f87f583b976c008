"""The faults file of `sched --simulate`: what jobs, `exec`, hosts and the controller do.

    # a comment; blank lines are ignored; one rule per line; "quoted words" may hold spaces
    job "backup *" takes 20s..40s exits 2          # a command pattern: how long, how it ends
    job "probe *" on h2 from 2h takes 1s crashes SIGSEGV
    job "sync-db*" times out                       # runs until its task's timeout kills it
    job "*" takes 3s                               # the first matching rule wins
    exec "hostname" returns "web1"                 # what `exec` returns in a macro
    exec "df *" fails "df: /data: no such file"    # ... or the error it raises
    host h2 down at 8s for 1h                      # its agent dies; no agent there for an hour
    host h3 killed at 2h                           # its agent dies and may start again at once
    host h3 clock +250ms                           # its clock reads 250 ms ahead
    controller unreachable at 3h for 10m           # sched cannot reach pcontrol meanwhile

`job PATTERN ?on HOST? ?from TIME? ?until TIME? ?takes SPAN?..SPAN?? ?exits N | crashes ?SIGNAL? |
times out? ?prints TEXT?`: PATTERN is a glob (`string match`) on the command's words joined by
spaces; SPAN..SPAN draws each job's time from that range (with --seed); without `takes` a job
takes --job-time; without an ending it exits 0. `times out` never ends by itself.
TIME is a span after the simulation's start (`90s`, `1h30m`) or a clock time (`14:30`, the
first at or after the start). A SPAN is a number with ms, s, m, h or d (`1h30m` too).

A malformed file is refused before anything runs: FaultsError names the file, the line and
the column, and shows the line with a caret.
"""

from __future__ import annotations

import random
import re
import signal as _signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Callable

from pclient.protocol import Outcome as AgentOutcome
from pcontrol.simagent import Behaviour

from ..lang.errors import FileFormatError
from ..lang.patterns import glob_match

__all__ = ["FaultModel", "Faults", "FaultsError", "HostFault", "JobRule", "ExecRule", "parse_faults", "parse_span",
           "parse_time"]


class FaultsError(FileFormatError):
    """A malformed faults file: where, and what was expected."""


_SPAN_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h|d)", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def parse_span(text: str) -> float:
    """Seconds from `500ms`, `90s`, `5m`, `1.5h`, `7d`, `1h30m` (ValueError otherwise)."""
    word = text.strip()
    pos = 0
    total = 0.0
    while pos < len(word):
        match = _SPAN_PART.match(word, pos)
        if match is None:
            break
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    if not word or pos != len(word):
        raise ValueError(f"expected a time span like 500ms, 90s, 5m, 2h, 7d or 1h30m, got '{text}'")
    return total


def parse_time(text: str, start_wall: float, tz: tzinfo) -> float:
    """Seconds after the start: a span (`90s`) or the first local clock time `HH:MM` at or
    after the start (ValueError otherwise)."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        try:
            return parse_span(text)
        except ValueError:
            raise ValueError(f"expected a time: a span after the start (90s, 2h) or a clock time (14:30), "
                             f"got '{text}'") from None
    start = datetime.fromtimestamp(start_wall, tz)
    at = start.replace(hour=int(match.group(1)), minute=int(match.group(2)), second=0, microsecond=0)
    if at < start:
        at += timedelta(days=1)
    return at.timestamp() - start_wall


@dataclass(frozen=True)
class JobRule:
    """`job PATTERN ...`: what the jobs whose command matches do."""

    pattern: str
    host: str | None = None
    after: float = 0.0          # seconds after the start
    until: float | None = None
    takes: tuple[float, float] | None = None
    outcome: AgentOutcome = AgentOutcome.EXIT
    status: int | None = 0
    signal: int | None = None
    hangs: bool = False
    prints: str = ""
    line: int = 0


@dataclass(frozen=True)
class ExecRule:
    """`exec PATTERN returns TEXT | fails TEXT`."""

    pattern: str
    result: str = ""
    fails: bool = False
    line: int = 0


@dataclass(frozen=True)
class HostFault:
    """A timed event: `host NAME down|killed`, `host NAME clock`, `controller unreachable`."""

    kind: str                   # "down", "clock", "unreachable"
    at: float                   # seconds after the start
    target: str = ""            # the host ("" for the controller)
    duration: float | None = None   # down/unreachable for this long (None: to the end)
    offset: float = 0.0         # clock offset
    line: int = 0


@dataclass
class Faults:
    """A parsed faults file (or none: every job takes `job_time` and exits 0)."""

    jobs: list[JobRule] = field(default_factory=list)
    execs: list[ExecRule] = field(default_factory=list)
    events: list[HostFault] = field(default_factory=list)

    def exec_rule(self, command: str) -> ExecRule | None:
        for rule in self.execs:
            if glob_match(rule.pattern, command):
                return rule
        return None


class FaultModel:
    """The simulated agents' JobModel (pcontrol.simagent): the faults file's job rules,
    then --job-time and exit 0. `now()` is seconds since the start."""

    def __init__(self, faults: Faults, job_time: float, rng: random.Random, now: Callable[[], float]):
        self.faults = faults
        self.job_time = job_time
        self.rng = rng
        self.now = now

    def behaviour(self, argv: tuple[str, ...], host: str) -> Behaviour:
        command = " ".join(argv)
        elapsed = self.now()
        for rule in self.faults.jobs:
            if rule.host is not None and rule.host != host:
                continue
            if elapsed < rule.after or (rule.until is not None and elapsed >= rule.until):
                continue
            if not glob_match(rule.pattern, command):
                continue
            if rule.hangs:
                duration = None
            elif rule.takes is None:
                duration = self.job_time
            else:
                low, high = rule.takes
                duration = low if high <= low else self.rng.uniform(low, high)
            return Behaviour(duration, rule.outcome, rule.status, rule.signal, rule.prints)
        return Behaviour(self.job_time)


# --- parsing -------------------------------------------------------------------------------------


@dataclass
class _Word:
    text: str
    column: int


def _words(raw: str, fail) -> list[_Word]:
    """The words of a line (`#` at a word's start begins a comment; "..." quotes, \\ escapes)."""
    words: list[_Word] = []
    i, n = 0, len(raw)
    while i < n:
        if raw[i].isspace():
            i += 1
            continue
        if raw[i] == "#":
            break
        start = i
        if raw[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n:
                    i += 1
                    chars.append({"n": "\n", "t": "\t"}.get(raw[i], raw[i]))
                else:
                    chars.append(raw[i])
                i += 1
            if i >= n:
                raise fail("missing close-quote", start + 1)
            i += 1
            words.append(_Word("".join(chars), start + 1))
            continue
        while i < n and not raw[i].isspace():
            i += 1
        words.append(_Word(raw[start:i], start + 1))
    return words


class _Line:
    """The words of one rule, read left to right; errors point at the word."""

    def __init__(self, path: str, number: int, raw: str, words: list[_Word]):
        self.path, self.number, self.raw, self.words = path, number, raw, words
        self.pos = 0

    def fail(self, message: str, word: _Word | None = None) -> FaultsError:
        if word is None:
            column = len(self.raw.rstrip()) + 1
        else:
            column = word.column
        return FaultsError(self.path, self.number, column, message, self.raw)

    def peek(self) -> _Word | None:
        return self.words[self.pos] if self.pos < len(self.words) else None

    def take(self, what: str) -> _Word:
        word = self.peek()
        if word is None:
            raise self.fail(f"expected {what} at the end of the line")
        self.pos += 1
        return word

    def expect(self, keyword: str) -> None:
        word = self.take(f"`{keyword}`")
        if word.text != keyword:
            raise self.fail(f"expected `{keyword}`, got '{word.text}'", word)

    def span(self, what: str = "a time span") -> float:
        word = self.take(what)
        try:
            return parse_span(word.text)
        except ValueError as exc:
            raise self.fail(str(exc), word) from None

    def time(self, start_wall: float, tz: tzinfo) -> float:
        word = self.take("a time")
        try:
            return parse_time(word.text, start_wall, tz)
        except ValueError as exc:
            raise self.fail(str(exc), word) from None

    def end(self) -> None:
        word = self.peek()
        if word is not None:
            raise self.fail(f"unexpected '{word.text}' (the rule is complete)", word)


def parse_faults(text: str, path: str, start_wall: float, tz: tzinfo) -> Faults:
    """The rules of a faults file, all read before anything runs (FaultsError if malformed)."""
    faults = Faults()
    for number, raw in enumerate(text.splitlines(), 1):
        def fail(message: str, column: int) -> FaultsError:
            return FaultsError(path, number, column, message, raw)

        words = _words(raw, fail)
        if not words:
            continue
        line = _Line(path, number, raw, words)
        head = line.take("a rule")
        if head.text == "job":
            faults.jobs.append(_job_rule(line, start_wall, tz))
        elif head.text == "exec":
            faults.execs.append(_exec_rule(line))
        elif head.text == "host":
            faults.events.append(_host_rule(line, start_wall, tz))
        elif head.text == "controller":
            faults.events.append(_controller_rule(line, start_wall, tz))
        else:
            raise line.fail(f"unknown rule '{head.text}': a rule starts with job, exec, host or controller", head)
    faults.events.sort(key=lambda e: e.at)
    return faults


_ENDINGS = "exits N, crashes ?SIGNAL?, times out"


def _job_rule(line: _Line, start_wall: float, tz: tzinfo) -> JobRule:
    pattern = line.take("a command pattern").text
    fields: dict = {"pattern": pattern, "line": line.number}
    ended = False
    while (word := line.peek()) is not None:
        line.pos += 1
        key = word.text
        if key == "on":
            fields["host"] = line.take("a host name").text
        elif key == "from":
            fields["after"] = line.time(start_wall, tz)
        elif key == "until":
            fields["until"] = line.time(start_wall, tz)
        elif key == "takes":
            spans = line.take("a time span or a range SPAN..SPAN")
            low_text, dots, high_text = spans.text.partition("..")
            try:
                low = parse_span(low_text)
                high = parse_span(high_text) if dots else low
            except ValueError as exc:
                raise line.fail(str(exc), spans) from None
            if high < low:
                raise line.fail(f"the range {spans.text} ends before it starts", spans)
            fields["takes"] = (low, high)
        elif key in ("exits", "crashes", "times", "hangs"):
            if ended:
                raise line.fail(f"a job rule has one ending ({_ENDINGS}); '{key}' is a second", word)
            ended = True
            if key == "exits":
                status = line.take("an exit status")
                if not status.text.isdigit() or int(status.text) > 255:
                    raise line.fail(f"expected an exit status 0..255, got '{status.text}'", status)
                fields["status"] = int(status.text)
            elif key == "crashes":
                fields.update(outcome=AgentOutcome.CRASH, status=None, signal=int(_signal.SIGSEGV))
                nxt = line.peek()
                if nxt is not None and nxt.text.upper().startswith("SIG"):
                    line.pos += 1
                    try:
                        fields["signal"] = int(_signal.Signals[nxt.text.upper()])
                    except KeyError:
                        raise line.fail(f"unknown signal '{nxt.text}' (SIGSEGV, SIGKILL, SIGABRT...)", nxt) from None
            else:
                if key == "times":
                    line.expect("out")
                fields.update(hangs=True)
        elif key == "prints":
            fields["prints"] = line.take("the text the job prints").text
        else:
            raise line.fail(f"unexpected '{key}' in a job rule: expected on HOST, from TIME, until TIME, "
                            f"takes SPAN, prints TEXT or an ending ({_ENDINGS})", word)
    return JobRule(**fields)


def _exec_rule(line: _Line) -> ExecRule:
    pattern = line.take("a command pattern").text
    verb = line.take("`returns` or `fails`")
    if verb.text == "returns":
        rule = ExecRule(pattern, line.take("the text exec returns").text, line=line.number)
    elif verb.text == "fails":
        nxt = line.peek()
        rule = ExecRule(pattern, line.take("the error text").text if nxt is not None else "child process exited abnormally",
                        fails=True, line=line.number)
    else:
        raise line.fail(f"expected `returns TEXT` or `fails TEXT`, got '{verb.text}'", verb)
    line.end()
    return rule


def _host_rule(line: _Line, start_wall: float, tz: tzinfo) -> HostFault:
    name = line.take("a host name").text
    what = line.take("down, killed or clock")
    if what.text in ("down", "killed"):
        line.expect("at")
        at = line.time(start_wall, tz)
        duration: float | None = 0.0
        if what.text == "down":
            duration = None
            if line.peek() is not None:
                line.expect("for")
                duration = line.span()
        line.end()
        return HostFault("down", at, name, duration, line=line.number)
    if what.text == "clock":
        word = line.take("a clock offset like +250ms or -2s")
        sign = -1.0 if word.text.startswith("-") else 1.0
        try:
            offset = sign * parse_span(word.text.lstrip("+-"))
        except ValueError as exc:
            raise line.fail(str(exc), word) from None
        at = 0.0
        if line.peek() is not None:
            line.expect("from")
            at = line.time(start_wall, tz)
        line.end()
        return HostFault("clock", at, name, offset=offset, line=line.number)
    raise line.fail(f"expected down, killed or clock after the host name, got '{what.text}'", what)


def _controller_rule(line: _Line, start_wall: float, tz: tzinfo) -> HostFault:
    line.expect("unreachable")
    line.expect("at")
    at = line.time(start_wall, tz)
    line.expect("for")
    duration = line.span()
    line.end()
    return HostFault("unreachable", at, duration=duration, line=line.number)
