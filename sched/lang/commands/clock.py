"""The `clock` command: the time now, and times to and from text.

    clock seconds | milliseconds | microseconds
    clock format SECONDS ?-format FMT? ?-gmt BOOL? ?-timezone ZONE?
    clock scan TEXT ?-format FMT? ?-gmt BOOL? ?-timezone ZONE? ?-base SECONDS?
    clock add SECONDS ?COUNT UNIT ...? ?-gmt BOOL? ?-timezone ZONE?

The time comes from the psched.lang.clock.Clock in `interp.clock` (a test puts a FakeClock there;
a scheduler hands in its own clock when none is there), else from the system. Local time is that clock's zone (the machine's zone by default); `-gmt 1` means UTC
and `-timezone` names a zone (`:Europe/Paris`, `UTC`, `+0100`).

Format groups are Tcl's (`%Y-%m-%d %H:%M:%S`, `%a %b %e`, `%s`, `%j`, `%V`, `%k`, `%l`,
`%N`, `%P`, `%J`...), rendered here with English names whatever the locale, never through
`strftime`. `clock scan` with `-format` reads the same groups; without it, it accepts the
forms an operator types or copies: `2026-11-22 14:00:00`, `2026-11-22T14:00`, `2026-11-22`,
`20261122`, `20261122T140000`, `11/22/2026 2:00 pm`, `Nov 22, 2026`, `22 Nov 2026`, `Nov 22`,
`clock format`'s own `Sun Nov 22 14:00:00 UTC 2026`, `14:00`, `14:00:30`, optional zone (`UTC`,
`GMT`, `Z`, `+0100`), a weekday (alone: the next such day, as in Tcl), and the words `now`,
`today`, `tomorrow`, `yesterday`, alone or with a date or time (`tomorrow 06:00`). A time
without a date is on the date of `-base` (now by default); a date without a time is at midnight.

Differences from Tcl (docs/language.md, `clock-scan`): with `-format`, a partial date fills
what is missing sensibly (`%Y` alone is January 1st, `%Y-%m` the first of the month; Tcl
ignores a year or month given without a day and uses the base date); an impossible date
(`2026-13-45`) is an error, not normalised; free-form scanning knows only the forms above (no
"next monday", "+3 days", and no bare number as a time of day); `today` alone is midnight.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import ScriptError
from ..registry import BUILTINS
from ..args import get_int, parse_options, set_arity

__all__ = ["wall_seconds"]


def wall_seconds(interp: Any) -> float:
    """The wall time (Unix epoch seconds) the language sees: the injected clock's, or the system's."""
    clock = interp.clock
    return clock.wall() if clock is not None else time.time()


# --- the command --------------------------------------------------------------------------------

clock = BUILTINS.ensemble("clock", "the time: seconds, milliseconds, format, scan, add")


@clock.sub("clock seconds", "the current time in seconds since 1970-01-01 00:00 UTC")
def clock_seconds(interp: Any, argv: list[str]) -> str:
    return str(int(wall_seconds(interp)))


@clock.sub("clock milliseconds", "the current time in milliseconds")
def clock_milliseconds(interp: Any, argv: list[str]) -> str:
    return str(int(wall_seconds(interp) * 1000))


@clock.sub("clock microseconds", "the current time in microseconds")
def clock_microseconds(interp: Any, argv: list[str]) -> str:
    return str(int(wall_seconds(interp) * 1_000_000))


@clock.sub("clock clicks ?-milliseconds|-microseconds?", "a high-resolution counter (for measuring durations)")
def clock_clicks(interp: Any, argv: list[str]) -> str:
    unit = argv[2] if len(argv) > 2 else "-microseconds"
    if unit not in ("-milliseconds", "-microseconds"):
        raise ScriptError(f'clock clicks: bad option "{unit}": must be -milliseconds or -microseconds')
    scale = 1000 if unit == "-milliseconds" else 1_000_000
    return str(int(time.perf_counter() * scale))


_FORMAT_OPTIONS = {"-format": True, "-gmt": True, "-timezone": True, "-locale": True}


@clock.sub("clock format seconds ?-format fmt? ?-gmt bool? ?-timezone zone?",
           "the time as text; Tcl format groups (default: %a %b %d %H:%M:%S %Z %Y)")
def clock_format_cmd(interp: Any, argv: list[str]) -> str:
    from .. import clocktext  # dates and zones: loaded by the first format, scan or add (start-up)

    seconds = get_int(argv[2])
    opts, i = parse_options(argv, 3, _FORMAT_OPTIONS, 0, "clock format")
    if i != len(argv):
        raise ScriptError('wrong # args: should be "clock format seconds ?-format fmt? ?-gmt bool? ?-timezone zone?"')
    return clocktext.clock_format(seconds, str(opts.get("-format", clocktext.DEFAULT_FORMAT)), clocktext.zone_for(interp, opts))


@clock.sub("clock scan text ?-format fmt? ?-gmt bool? ?-timezone zone? ?-base seconds?",
           "the seconds of a date-time text (2026-11-22 14:00:00, Nov 22, 2026, tomorrow 06:00, ... or by -format)")
def clock_scan_cmd(interp: Any, argv: list[str]) -> str:
    from .. import clocktext  # dates and zones: loaded by the first format, scan or add (start-up)

    opts, i = parse_options(argv, 3, dict(_FORMAT_OPTIONS, **{"-base": True}), 0, "clock scan")
    if i != len(argv):
        raise ScriptError('wrong # args: should be "clock scan text ?-format fmt? ?-gmt bool? ?-timezone zone? ?-base seconds?"')
    zone = clocktext.zone_for(interp, opts)
    base = get_int(str(opts["-base"])) if "-base" in opts else int(wall_seconds(interp))
    fmt = str(opts["-format"]) if "-format" in opts else None
    return str(clocktext.clock_scan(argv[2], zone, base, fmt))


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


@clock.sub("clock add seconds ?count unit ...? ?-gmt bool? ?-timezone zone?",
           "add amounts of seconds, minutes, hours, days, weeks, months or years to a time")
def clock_add(interp: Any, argv: list[str]) -> str:
    from .. import clocktext  # dates and zones: loaded by the first format, scan or add (start-up)

    seconds = get_int(argv[2])
    words = argv[3:]
    opts: dict = {}
    while len(words) >= 2 and words[-2] in _FORMAT_OPTIONS:
        opts[words[-2]] = words[-1]
        words = words[:-2]
    if len(words) % 2:
        raise ScriptError('wrong # args: should be "clock add seconds ?count unit ...? ?-gmt bool? ?-timezone zone?"')
    zone = clocktext.zone_for(interp, opts)
    for k in range(0, len(words), 2):
        count, unit = get_int(words[k]), words[k + 1].lower().rstrip("s")
        if unit in _UNITS and unit not in ("day", "week"):
            seconds += count * _UNITS[unit]
        elif unit in ("day", "week", "month", "year"):
            seconds = clocktext.add_calendar(seconds, count, unit, zone)
        else:
            raise ScriptError(f'clock add: bad unit "{words[k + 1]}": must be seconds, minutes, hours, days, weeks, months or years')
    return str(seconds)


set_arity(clock.table["format"], 9)
set_arity(clock.table["scan"], 11)
