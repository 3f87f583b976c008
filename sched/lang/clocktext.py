"""Times to and from text by the rules of Tcl's `clock` (psched.lang.commands.clock): format
groups, free-form and formatted scanning, zones, and calendar arithmetic.

Apart from the command's module so that a run that never formats, scans or adds times does not
load datetime, zoneinfo and calendar (start-up, issue 13): `clock seconds` and the like need none.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import local_zone
from .errors import ScriptError
from .expr import parse_bool


__all__ = ["DEFAULT_FORMAT", "clock_format", "clock_scan", "zone_for", "add_calendar"]

DEFAULT_FORMAT = "%a %b %d %H:%M:%S %Z %Y"

_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_JULIAN_EPOCH_DAY = 2440588  # Julian Day Number of 1970-01-01
_GMT = timezone(timedelta(0), "GMT")  # what -gmt 1 means; Tcl calls it GMT


@lru_cache(maxsize=1)
def _system_zone() -> tzinfo:
    return local_zone()


def zone_for(interp: Any, opts: dict) -> tzinfo:
    """The zone `-timezone` or `-gmt` names in `opts`, else the interpreter's clock's, else the system's."""
    if "-timezone" in opts and opts["-timezone"] != "":
        return _named_zone(str(opts["-timezone"]))
    if "-gmt" in opts:
        flag = parse_bool(str(opts["-gmt"]))
        if flag is None:
            raise ScriptError(f'expected boolean value but got "{opts["-gmt"]}"')
        if flag:
            return _GMT
    clock = interp.clock
    return clock.tz if clock is not None else _system_zone()


_OFFSET_RE = re.compile(r"([+-])(\d\d):?(\d\d)(?::?(\d\d))?\Z")


def _named_zone(name: str) -> tzinfo:
    key = name[1:] if name.startswith(":") else name
    if key.upper() in ("UTC", "GMT", "Z"):
        return timezone(timedelta(0), "GMT" if key.upper() == "GMT" else "UTC")
    m = _OFFSET_RE.match(key)
    if m:
        sign, hh, mm, ss = m.groups()
        delta = timedelta(hours=int(hh), minutes=int(mm), seconds=int(ss or 0))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScriptError(f'time zone "{name}" not found') from None


def _datetime(seconds: int, zone: tzinfo) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, zone)
    except (OverflowError, OSError, ValueError):
        raise ScriptError(f'clock value "{seconds}" out of range') from None


# --- format -------------------------------------------------------------------------------------


def _iso_week(d: datetime) -> tuple[int, int]:
    year, week, _ = d.isocalendar()
    return year, week


def _zone_name(d: datetime) -> str:
    return d.tzname() or _offset(d)


def _offset(d: datetime) -> str:
    delta = d.utcoffset() or timedelta(0)
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    text = f"{sign}{total // 3600:02d}{total % 3600 // 60:02d}"
    return text + (f"{total % 60:02d}" if total % 60 else "")


_GROUPS: dict[str, Callable[[datetime], str]] = {
    "a": lambda d: _DAYS[d.weekday()][:3],
    "A": lambda d: _DAYS[d.weekday()],
    "b": lambda d: _MONTHS[d.month - 1][:3],
    "h": lambda d: _MONTHS[d.month - 1][:3],
    "B": lambda d: _MONTHS[d.month - 1],
    "C": lambda d: f"{d.year // 100:02d}",
    "d": lambda d: f"{d.day:02d}",
    "e": lambda d: f"{d.day:2d}",
    "g": lambda d: f"{_iso_week(d)[0] % 100:02d}",
    "G": lambda d: f"{_iso_week(d)[0]:04d}",
    "H": lambda d: f"{d.hour:02d}",
    "I": lambda d: f"{(d.hour + 11) % 12 + 1:02d}",
    "j": lambda d: f"{d.timetuple().tm_yday:03d}",
    "J": lambda d: str(d.toordinal() - date(1970, 1, 1).toordinal() + _JULIAN_EPOCH_DAY),
    "k": lambda d: f"{d.hour:2d}",
    "l": lambda d: f"{(d.hour + 11) % 12 + 1:2d}",
    "m": lambda d: f"{d.month:02d}",
    "M": lambda d: f"{d.minute:02d}",
    "n": lambda d: "\n",
    "N": lambda d: f"{d.month:2d}",
    "p": lambda d: "AM" if d.hour < 12 else "PM",
    "P": lambda d: "am" if d.hour < 12 else "pm",
    "s": lambda d: str(int(d.timestamp())),
    "S": lambda d: f"{d.second:02d}",
    "t": lambda d: "\t",
    "u": lambda d: str(d.isoweekday()),
    "U": lambda d: f"{(d.timetuple().tm_yday + 6 - (d.isoweekday() % 7)) // 7:02d}",
    "V": lambda d: f"{_iso_week(d)[1]:02d}",
    "w": lambda d: str(d.isoweekday() % 7),
    "W": lambda d: f"{(d.timetuple().tm_yday + 6 - d.weekday()) // 7:02d}",
    "y": lambda d: f"{d.year % 100:02d}",
    "Y": lambda d: f"{d.year:04d}",
    "z": _offset,
    "Z": _zone_name,
    "%": lambda d: "%",
}
_COMPOSITES = {
    "c": "%a %b %e %H:%M:%S %Y", "D": "%m/%d/%Y", "r": "%I:%M:%S %P", "R": "%H:%M", "T": "%H:%M:%S",
    "x": "%m/%d/%Y", "X": "%H:%M:%S", "+": "%a %b %e %H:%M:%S %Z %Y",
}


def clock_format(seconds: int, fmt: str, zone: tzinfo) -> str:
    """Render epoch seconds in a zone with Tcl's format groups."""
    return _render(_datetime(seconds, zone), fmt, 0)


def _render(d: datetime, fmt: str, depth: int) -> str:
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0 or j + 1 >= n:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        code = fmt[j + 1]
        i = j + 2
        if code in "EO" and i < n:  # locale alternatives: the plain group
            code = fmt[i]
            i += 1
        group = _GROUPS.get(code)
        if group is not None:
            out.append(group(d))
        elif code in _COMPOSITES and depth == 0:
            out.append(_render(d, _COMPOSITES[code], 1))
        else:
            out.append("%" + code)  # Tcl leaves an unknown group as it is
    return "".join(out)


# --- scan ---------------------------------------------------------------------------------------

_MONTH_RE = "|".join(m for m in _MONTHS) + "|" + "|".join(m[:3] for m in _MONTHS)
_DAY_RE = "|".join(_DAYS) + "|" + "|".join(d[:3] for d in _DAYS)
_SCAN_GROUPS: dict[str, tuple[str, str]] = {
    "Y": ("Y", r"\d{1,4}"), "y": ("y", r"\d{1,2}"), "m": ("m", r"\d{1,2}"), "N": ("m", r"\s?\d{1,2}"),
    "d": ("d", r"\d{1,2}"), "e": ("d", r"\s?\d{1,2}"), "H": ("H", r"\d{1,2}"), "k": ("H", r"\s?\d{1,2}"),
    "I": ("I", r"\d{1,2}"), "l": ("I", r"\s?\d{1,2}"), "M": ("M", r"\d{1,2}"), "S": ("S", r"\d{1,2}"),
    "p": ("p", r"[AaPp][Mm]"), "P": ("p", r"[AaPp][Mm]"), "b": ("b", _MONTH_RE), "B": ("b", _MONTH_RE),
    "h": ("b", _MONTH_RE), "a": ("a", _DAY_RE), "A": ("a", _DAY_RE), "j": ("j", r"\d{1,3}"),
    "s": ("s", r"[+-]?\d+"), "z": ("z", r"[+-]\d\d:?\d\d(?::?\d\d)?"), "Z": ("Z", r"[A-Za-z]{1,5}|[+-]\d\d:?\d\d"),
    "u": ("a_num", r"[1-7]"), "w": ("a_num", r"[0-6]"), "J": ("J", r"\d+"), "C": ("C", r"\d{1,2}"),
}


@lru_cache(maxsize=128)
def _scan_regex(fmt: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts: list[str] = []
    fields: list[str] = []
    expanded = fmt
    for code, composite in _COMPOSITES.items():
        expanded = expanded.replace("%" + code, composite)
    i, n = 0, len(expanded)
    while i < n:
        c = expanded[i]
        if c == "%" and i + 1 < n:
            code = expanded[i + 1]
            i += 2
            if code in "EO" and i < n:
                code = expanded[i]
                i += 1
            if code == "%":
                parts.append("%")
            elif code in "nt":
                parts.append(r"\s*")
            elif code in _SCAN_GROUPS:
                field, rx = _SCAN_GROUPS[code]
                fields.append(field)
                parts.append(f"({rx})")
            else:
                raise ScriptError(f'clock scan: unsupported format group "%{code}"')
            continue
        parts.append(r"\s*" if c.isspace() else re.escape(c))
        i += 1
    return re.compile(r"\s*" + "".join(parts) + r"\s*\Z", re.I), tuple(fields)


def _scan_with_format(text: str, fmt: str, zone: tzinfo, base: datetime) -> int:
    rx, fields = _scan_regex(fmt)
    m = rx.match(text)
    if m is None:
        raise ScriptError(f'clock scan: input string "{text}" does not match supplied format "{fmt}"')
    got: dict[str, str] = {}
    for field, value in zip(fields, m.groups()):
        got[field] = value.strip()
    if "s" in got:
        return int(got["s"])
    if "z" in got or ("Z" in got and got["Z"]):
        zone = _named_zone(got.get("z") or got["Z"])
        base = base.astimezone(zone)
    if "J" in got:
        day = date.fromordinal(int(got["J"]) - _JULIAN_EPOCH_DAY + date(1970, 1, 1).toordinal())
        year, month, mday = day.year, day.month, day.day
    elif any(k in got for k in ("Y", "y", "m", "d", "b", "j")):
        year = _year(got, base.year)
        if "j" in got and "m" not in got and "b" not in got:
            day = date(year, 1, 1) + timedelta(days=int(got["j"]) - 1)
            month, mday = day.month, day.day
        else:
            month = _month(got) if ("m" in got or "b" in got) else (base.month if "Y" not in got and "y" not in got else 1)
            mday = int(got["d"]) if "d" in got else (1 if ("m" in got or "b" in got or "Y" in got or "y" in got) else base.day)
    else:
        year, month, mday = base.year, base.month, base.day
    hour = int(got.get("H", "0"))
    if "I" in got:
        hour = int(got["I"]) % 12 + (12 if got.get("p", "am").lower() == "pm" else 0)
    elif "p" in got and got["p"].lower() == "pm" and hour < 12:
        hour += 12
    return _epoch(zone, year, month, mday, hour, int(got.get("M", "0")), int(got.get("S", "0")), text)


def _year(got: dict[str, str], base_year: int) -> int:
    if "Y" in got:
        return int(got["Y"])
    if "y" in got:
        yy = int(got["y"])
        if "C" in got:
            return int(got["C"]) * 100 + yy
        return yy + (2000 if yy < 38 else 1900)  # Tcl's pivot: 00-37 are 20xx
    return base_year


def _month(got: dict[str, str]) -> int:
    if "m" in got:
        return int(got["m"])
    name = got["b"].lower()
    for k, month in enumerate(_MONTHS):
        if month.lower() == name or month[:3].lower() == name:
            return k + 1
    raise ScriptError(f'clock scan: bad month "{got["b"]}"')


def _epoch(zone: tzinfo, year: int, month: int, day: int, hour: int, minute: int, second: int, text: str) -> int:
    try:
        d = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except (ValueError, OverflowError) as err:
        raise ScriptError(f'unable to convert date-time string "{text}": {err}') from None
    return int(d.timestamp())


_FREE_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?"
_FREE_RE = re.compile(
    r"\s*(?:(?:(?P<Y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})|(?P<cY>\d{4})(?P<cm>\d\d)(?P<cd>\d\d)(?=[Tt]|\s|\Z)"
    r"|(?P<um>\d{1,2})/(?P<ud>\d{1,2})/(?P<uY>\d{2,4})"
    rf"|(?P<nb>{_FREE_MONTH})\s*(?P<nd>\d{{1,2}})(?:,\s*(?P<nY>\d{{4}}|\d\d)(?!:))?"
    rf"|(?P<xd>\d{{1,2}})[\s-]*(?P<xb>{_FREE_MONTH})(?:[\s-]*(?P<xY>\d{{4}})(?!:))?)?"
    r"(?:(?:^|[Tt]|\s+)(?P<H>\d{1,2}):(?P<M>\d\d)(?::(?P<S>\d\d)(?:\.\d+)?)?(?:\s*(?P<p>[AaPp][Mm]))?"
    r"|[Tt](?P<cH>\d\d)(?P<cM>\d\d)(?P<cS>\d\d)?)?"
    r"(?:\s*(?P<zone>[Zz]|UTC|GMT|[+-]\d\d:?\d\d))?"
    r"(?:(?<=\d|[A-Za-z])\s+(?P<tY>\d{4}))?)\s*\Z",  # the year after the time: `clock format`'s own layout
    re.I,
)
_FREE_WORD = re.compile(r"^\s*(today|tomorrow|yesterday)\b|\b(today|tomorrow|yesterday)\s*\Z", re.I)
_FREE_DAY = re.compile(r"\s*([A-Za-z]+)\.?(?:,\s*|\s+|\Z)|\s+([A-Za-z]+)\.?\s*\Z")
_WEEKDAYS = {name: k for k, day in enumerate(_DAYS) for name in (day.lower(), day[:3].lower())}
_WEEKDAYS.update({"tues": 1, "wednes": 2, "thur": 3, "thurs": 3})


def _two_digit_year(year: int) -> int:
    return year + (2000 if year < 39 else 1900)  # Tcl's free-form pivot: 00-38 are 20xx


def _free_month(name: str) -> int:
    return [m[:3].lower() for m in _MONTHS].index(name[:3].lower()) + 1


def _take_weekday(text: str) -> tuple[int | None, str]:
    """A weekday name at the start or the end of a free-form text (Tcl's "day item"), and the
    text without it."""
    for m in _FREE_DAY.finditer(text):
        word = (m.group(1) or m.group(2)).lower()
        if word in _WEEKDAYS and (m.start() == 0 or m.end() == len(text)):
            return _WEEKDAYS[word], text[:m.start()] + " " + text[m.end():]
    return None, text


def _scan_free(text: str, zone: tzinfo, base: datetime) -> int:
    """Tcl's free-form forms that an operator types or copies: ISO dates and times, US dates,
    month names (`Nov 14, 2023`, `14 Nov 2023`), `clock format`'s own output, a zone, a weekday
    (alone: the next such day from the base, as in Tcl; beside a date: ignored), and the words
    now, today, tomorrow and yesterday (alone: midnight of that day; beside a date or a time,
    that day's)."""
    if text.strip().lower() == "now":
        return int(base.timestamp())
    shift, rest = 0, text
    word = _FREE_WORD.search(text)
    if word is not None:  # a day relative to the date: `tomorrow 06:00`, `2026-11-22 yesterday`
        shift = {"today": 0, "tomorrow": 1, "yesterday": -1}[(word.group(1) or word.group(2)).lower()]
        rest = text[:word.start()] + " " + text[word.end():]
        if not rest.strip():
            day = base.date() + timedelta(days=shift)
            return _epoch(zone, day.year, day.month, day.day, 0, 0, 0, text)
    weekday, rest = _take_weekday(rest)
    m = _FREE_RE.match(rest)
    if m is None or not text.strip():
        raise ScriptError(f'unable to convert date-time string "{text}"')
    g = m.groupdict()
    if g["zone"]:
        zone = _named_zone(g["zone"])
        base = base.astimezone(zone)
    has_time = g["H"] is not None or g["cH"] is not None
    if g["tY"] and (not has_time or g["nY"] or g["xY"] or not (g["nb"] or g["xb"])):
        raise ScriptError(f'unable to convert date-time string "{text}"')
    if g["Y"]:
        year, month, mday = int(g["Y"]), int(g["m"]), int(g["d"])
    elif g["cY"]:
        year, month, mday = int(g["cY"]), int(g["cm"]), int(g["cd"])
    elif g["uY"]:
        year = int(g["uY"])
        year = year if len(g["uY"]) == 4 else _two_digit_year(year)
        month, mday = int(g["um"]), int(g["ud"])
    elif g["nb"] or g["xb"]:
        year_text = g["nY"] or g["xY"] or g["tY"]
        year = base.year if not year_text else int(year_text) if len(year_text) == 4 else _two_digit_year(int(year_text))
        month, mday = _free_month(g["nb"] or g["xb"]), int(g["nd"] or g["xd"])
    else:
        if not has_time and weekday is None:
            raise ScriptError(f'unable to convert date-time string "{text}"')
        day = base.date() + timedelta(days=(weekday - base.weekday()) % 7 if weekday is not None else 0)
        year, month, mday = day.year, day.month, day.day
    if g["H"] is not None:
        hour, minute, second = int(g["H"]), int(g["M"]), int(g["S"] or 0)
        if g["p"]:
            if not 1 <= hour <= 12:
                raise ScriptError(f'unable to convert date-time string "{text}": hour {hour} with am/pm')
            hour = hour % 12 + (12 if g["p"].lower() == "pm" else 0)
    elif g["cH"] is not None:
        hour, minute, second = int(g["cH"]), int(g["cM"]), int(g["cS"] or 0)
    else:
        hour = minute = second = 0
    if shift:
        try:
            day = date(year, month, mday) + timedelta(days=shift)
        except (ValueError, OverflowError) as err:
            raise ScriptError(f'unable to convert date-time string "{text}": {err}') from None
        year, month, mday = day.year, day.month, day.day
    return _epoch(zone, year, month, mday, hour, minute, second, text)


def clock_scan(text: str, zone: tzinfo, base_seconds: int, fmt: str | None = None) -> int:
    """Epoch seconds of a date-time text (Tcl format groups with `fmt`, the free forms without)."""
    base = _datetime(base_seconds, zone)
    if fmt is not None:
        return _scan_with_format(text, fmt, zone, base)
    return _scan_free(text, zone, base)


def add_calendar(seconds: int, count: int, unit: str, zone: tzinfo) -> int:
    """Days, weeks, months and years move the local date and keep the local time of day."""
    d = _datetime(seconds, zone)
    try:
        if unit in ("day", "week"):
            day = d.date() + timedelta(days=count * (7 if unit == "week" else 1))
        else:
            months = d.month - 1 + count * (12 if unit == "year" else 1)
            year, month = d.year + months // 12, months % 12 + 1
            day = date(year, month, min(d.day, calendar.monthrange(year, month)[1]))
    except (OverflowError, ValueError):
        raise ScriptError("clock add: result out of range") from None
    return _epoch(zone, day.year, day.month, day.day, d.hour, d.minute, d.second, str(seconds))
