"""Tests of the pure scheduling maths: trange, windows, DST, periods, plan, the timer heap.

No real clock anywhere: times are given as arguments or come from a FakeClock.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psched.lang.clock import FakeClock
from sched_world import World
from psched.scheduler.timing import (
    SEARCH_DAYS,
    WALL_RECHECK,
    Limits,
    Periods,
    Plan,
    PlanReason,
    TaskTiming,
    TimeRange,
    TimerHeap,
    TimingError,
    allowed,
    allowed_at,
    due_key,
    duration_seconds,
    format_days,
    next_change,
    parse_days,
    parse_hhmm,
    parse_periods,
    parse_trange,
    plan,
)

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def utc(*fields: int) -> float:
    """Epoch seconds of a UTC date and time."""
    return datetime(*fields, tzinfo=UTC).timestamp()


def local(tz, *fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=tz, fold=fold)


def tr(text: str) -> TimeRange:
    return parse_trange(text.split())


# --------------------------------------------------------------------------- parse_hhmm

@pytest.mark.parametrize(
    "text, minutes",
    [("00:00", 0), ("0:00", 0), ("9:05", 545), ("09:05", 545), ("12:30", 750), ("23:59", 1439)],
)
def test_parse_hhmm(text, minutes):
    assert parse_hhmm(text) == minutes


def test_parse_hhmm_end_of_day_only_when_allowed():
    assert parse_hhmm("24:00", allow_end_of_day=True) == 1440
    with pytest.raises(TimingError, match="only valid as an end"):
        parse_hhmm("24:00")


@pytest.mark.parametrize(
    "text", ["25:00", "24:01", "12:60", "1200", "12:5", "", "ab:cd", "-1:00", " 12:00", "12:00 ", "123:00", "１２:00"]
)
def test_parse_hhmm_errors(text):
    with pytest.raises(TimingError) as caught:
        parse_hhmm(text, allow_end_of_day=True)
    assert str(caught.value) == f"expected HH:MM, got '{text}'"


# --------------------------------------------------------------------------- parse_days

@pytest.mark.parametrize(
    "text, days",
    [
        ("Mon", {MON}),
        ("monday", {MON}),
        ("SUNDAY", {SUN}),
        ("Mon-Fri", {MON, TUE, WED, THU, FRI}),
        ("mon-fri", {MON, TUE, WED, THU, FRI}),
        ("Sat,Sun", {SAT, SUN}),
        ("Mon,Wed-Fri", {MON, WED, THU, FRI}),
        ("Fri-Mon", {FRI, SAT, SUN, MON}),
        ("Sun-Sat", set(range(7))),
        ("Wed-Wed", {WED}),
        ("Tuesday-Thursday", {TUE, WED, THU}),
        ("all", set(range(7))),
        ("ALL", set(range(7))),
        ("*", set(range(7))),
        ("Mon, Tue", {MON, TUE}),
        ("Mon,Mon-Tue", {MON, TUE}),
    ],
)
def test_parse_days(text, days):
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize(
    "text, message",
    [
        ("Mnday", "unknown day 'Mnday', expected Mon..Sun"),
        ("Mon-Fr", "unknown day 'Fr', expected Mon..Sun"),
        ("Mo", "unknown day 'Mo', expected Mon..Sun"),
        ("", "empty day list"),
        ("Mon,,Fri", "empty item in day list 'Mon,,Fri'"),
        ("Mon,", "empty item in day list"),
        ("Mon-", "bad day range 'Mon-', expected two days like Mon-Fri"),
        ("Mon-Tue-Wed", "bad day range"),
        ("all,Mon", "unknown day 'all'"),
    ],
)
def test_parse_days_errors(text, message):
    with pytest.raises(TimingError) as caught:
        parse_days(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "days, text",
    [({MON}, "Mon"), ({SAT, SUN}, "Sat,Sun"), (set(range(5)), "Mon-Fri"), ({MON, WED, THU, FRI}, "Mon,Wed-Fri"),
     (set(range(7)), "all"), ({MON, SUN}, "Mon,Sun")],
)
def test_format_days(days, text):
    assert format_days(days) == text
    assert parse_days(text) == frozenset(days)


# --------------------------------------------------------------------------- parse_trange

@pytest.mark.parametrize(
    "words, expected",
    [
        ("09:00 17:00", TimeRange(540, 1020)),
        ("9:00 17:00", TimeRange(540, 1020)),
        ("-exclude 12:00 13:00", TimeRange(720, 780, exclude=True)),
        ("22:00 02:00 -days Fri", TimeRange(1320, 120, days=frozenset({FRI}))),
        ("-exclude 00:00 24:00 -days Sat,Sun", TimeRange(0, 1440, exclude=True, days=frozenset({SAT, SUN}))),
        ("08:00 08:00", TimeRange(480, 480)),
        ("-days Mon-Fri 09:00 17:00", TimeRange(540, 1020, days=frozenset(range(5)))),
        ("09:00 17:00 -days all", TimeRange(540, 1020, days=frozenset(range(7)))),
        ("09:00 17:00 -exclude", TimeRange(540, 1020, exclude=True)),
    ],
)
def test_parse_trange_forms(words, expected):
    assert parse_trange(words.split()) == expected


@pytest.mark.parametrize(
    "words, index, message",
    [
        ("25:00 02:00", 0, "expected HH:MM, got '25:00'"),
        ("-exclude 10:00 1:2", 2, "expected HH:MM, got '1:2'"),
        ("24:00 02:00", 0, "24:00 is only valid as an end time"),
        ("10:00 12:00 -days Mnday", 3, "unknown day 'Mnday', expected Mon..Sun"),
        ("10:00 12:00 -days", 2, "missing day list after -days"),
        ("10:00 12:00 -day Mon", 2, "unknown option '-day', expected -exclude or -days"),
        ("10:00 12:00 13:00", 2, "unexpected word '13:00'"),
        ("10:00", None, "trange expects a start and an end time"),
        ("09:00-17:00", 0, "trange takes the start and the end as two words: trange 09:00 17:00"),
        ("", None, "trange expects a start and an end time"),
        ("-exclude -days Mon", None, "trange expects a start and an end time"),
    ],
)
def test_parse_trange_errors(words, index, message):
    with pytest.raises(TimingError) as caught:
        parse_trange(words.split())
    assert caught.value.word_index == index
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "words", ["09:00 17:00", "-exclude 22:00 02:00 -days Fri", "00:00 24:00 -days Mon,Wed-Fri", "06:00 06:00 -days all"]
)
def test_trange_str_round_trips(words):
    original = tr(words)
    assert tr(str(original)) == original


@pytest.mark.parametrize(
    "kwargs", [dict(start_min=-1, end_min=10), dict(start_min=1440, end_min=10), dict(start_min=0, end_min=1441),
               dict(start_min=0, end_min=10, days=frozenset()), dict(start_min=0, end_min=10, days=frozenset({7}))]
)
def test_time_range_validates(kwargs):
    with pytest.raises(TimingError):
        TimeRange(**kwargs)


# --------------------------------------------------------------------------- allowed

# 2024-01-01 was a Monday.
ALLOWED_TABLE = [
    # ranges, (day of Jan 2024, hour, minute), expected
    ([], (1, 3, 0), True),
    (["09:00 17:00"], (1, 9, 0), True),
    (["09:00 17:00"], (1, 16, 59), True),
    (["09:00 17:00"], (1, 17, 0), False),
    (["09:00 17:00"], (1, 8, 59), False),
    (["22:00 02:00"], (1, 23, 0), True),
    (["22:00 02:00"], (1, 1, 59), True),
    (["22:00 02:00"], (1, 2, 0), False),
    (["22:00 02:00"], (1, 21, 59), False),
    # Crossing midnight: the day list names the day the range starts on.
    (["22:00 02:00 -days Fri"], (5, 23, 0), True),   # Fri 23:00
    (["22:00 02:00 -days Fri"], (6, 1, 0), True),    # Sat 01:00
    (["22:00 02:00 -days Fri"], (6, 23, 0), False),  # Sat 23:00
    (["22:00 02:00 -days Fri"], (5, 1, 0), False),   # Fri 01:00 belongs to Thursday's night
    (["22:00 02:00 -days Fri"], (7, 1, 0), False),   # Sun 01:00
    (["22:00 02:00 -days Sun"], (8, 1, 0), True),    # Mon 01:00 after Sunday night (wrap)
    (["22:00 00:00"], (1, 23, 59), True),
    (["22:00 00:00"], (2, 0, 0), False),
    (["20:00 24:00 -days Mon"], (1, 23, 59), True),
    (["20:00 24:00 -days Mon"], (2, 0, 0), False),
    (["09:00 17:00 -days Mon-Fri"], (6, 12, 0), False),  # Saturday
    (["09:00 17:00 -days Mon-Fri"], (5, 12, 0), True),
    # Whole day.
    (["00:00 00:00 -days Tue"], (2, 0, 0), True),
    (["05:00 05:00 -days Tue"], (2, 23, 59), True),
    (["05:00 05:00 -days Tue"], (3, 0, 0), False),
    (["00:00 24:00 -days Tue"], (1, 23, 59), False),
    # Exclusions.
    (["-exclude 12:00 13:00"], (1, 12, 30), False),
    (["-exclude 12:00 13:00"], (1, 13, 0), True),
    (["09:00 17:00", "-exclude 12:00 13:00"], (1, 12, 0), False),
    (["09:00 17:00", "-exclude 12:00 13:00"], (1, 13, 0), True),
    (["09:00 17:00", "-exclude 12:00 13:00"], (1, 18, 0), False),
    (["09:00 12:00", "20:00 22:00"], (1, 21, 0), True),
    (["09:00 12:00", "20:00 22:00"], (1, 13, 0), False),
    (["-exclude 00:00 24:00 -days Sat,Sun"], (6, 10, 0), False),
    (["-exclude 00:00 24:00 -days Sat,Sun"], (8, 0, 0), True),
]


@pytest.mark.parametrize("words, when, expected", ALLOWED_TABLE)
def test_allowed(words, when, expected):
    ranges = [tr(w) for w in words]
    day, hour, minute = when
    assert allowed(ranges, datetime(2024, 1, day, hour, minute, 30)) is expected
    assert allowed(ranges, datetime(2024, 1, day, hour, minute, tzinfo=BERLIN)) is expected


# --------------------------------------------------------------------------- next_change (UTC)

NEXT_CHANGE_TABLE = [
    # ranges, now (UTC), expected next change (UTC) or None
    ([], (2024, 1, 1, 12, 0), None),
    (["09:00 17:00"], (2024, 1, 1, 8, 0), (2024, 1, 1, 9, 0)),
    (["09:00 17:00"], (2024, 1, 1, 9, 0), (2024, 1, 1, 17, 0)),
    (["09:00 17:00"], (2024, 1, 1, 17, 0), (2024, 1, 2, 9, 0)),
    (["09:00 17:00 -days Mon-Fri"], (2024, 1, 5, 17, 0), (2024, 1, 8, 9, 0)),   # Fri evening -> Mon
    (["22:00 02:00 -days Fri"], (2024, 1, 1, 0, 0), (2024, 1, 5, 22, 0)),
    (["22:00 02:00 -days Fri"], (2024, 1, 5, 22, 0), (2024, 1, 6, 2, 0)),
    (["22:00 02:00 -days Sun"], (2024, 1, 7, 23, 0), (2024, 1, 8, 2, 0)),
    # Overlapping allow ranges: the 11:00 boundary changes nothing and is skipped.
    (["09:00 12:00", "11:00 17:00"], (2024, 1, 1, 10, 0), (2024, 1, 1, 17, 0)),
    (["09:00 17:00", "-exclude 12:00 13:00"], (2024, 1, 1, 10, 0), (2024, 1, 1, 12, 0)),
    (["09:00 17:00", "-exclude 12:00 13:00"], (2024, 1, 1, 12, 0), (2024, 1, 1, 13, 0)),
    (["00:00 00:00 -days Wed"], (2024, 1, 1, 5, 0), (2024, 1, 3, 0, 0)),
    (["00:00 00:00 -days Wed"], (2024, 1, 3, 5, 0), (2024, 1, 4, 0, 0)),
    (["20:00 24:00 -days Mon"], (2024, 1, 1, 21, 0), (2024, 1, 2, 0, 0)),
    # A weekly window is found a week ahead, inside the 8-day search.
    (["10:00 11:00 -days Mon"], (2024, 1, 1, 11, 0), (2024, 1, 8, 10, 0)),
    # Never changes: always allowed, never allowed.
    (["00:00 00:00"], (2024, 1, 1, 5, 0), None),
    (["-exclude 00:00 24:00"], (2024, 1, 1, 5, 0), None),
    (["09:00 17:00", "-exclude 00:00 00:00"], (2024, 1, 1, 5, 0), None),
]


@pytest.mark.parametrize("words, now, expected", NEXT_CHANGE_TABLE)
def test_next_change_utc(words, now, expected):
    ranges = [tr(w) for w in words]
    result = next_change(ranges, utc(*now), UTC)
    assert result == (None if expected is None else utc(*expected))


def test_next_change_strictly_after_fractional_now():
    ranges = [tr("09:00 17:00")]
    assert next_change(ranges, utc(2024, 1, 1, 9, 0) - 0.25, UTC) == utc(2024, 1, 1, 9, 0)
    assert next_change(ranges, utc(2024, 1, 1, 9, 0) + 0.25, UTC) == utc(2024, 1, 1, 17, 0)


# --------------------------------------------------------------------------- daylight saving

# America/New_York 2024: spring forward Sun Mar 10 02:00 EST -> 03:00 EDT (07:00 UTC);
#                        fall back Sun Nov 3 02:00 EDT -> 01:00 EST (06:00 UTC).
# Europe/Berlin 2024:    spring forward Sun Mar 31 02:00 CET -> 03:00 CEST (01:00 UTC);
#                        fall back Sun Oct 27 03:00 CEST -> 02:00 CET (01:00 UTC).
DST_NEXT_CHANGE_TABLE = [
    # tz, ranges, now (UTC), expected (UTC)
    # A window opening inside the skipped hour opens at the transition.
    (NEW_YORK, ["02:30 04:00"], (2024, 3, 10, 5, 0), (2024, 3, 10, 7, 0)),
    (NEW_YORK, ["02:30 04:00"], (2024, 3, 10, 7, 0), (2024, 3, 10, 8, 0)),
    # A day window across the short night: 17:00 EST to 09:00 EDT is 15 hours.
    (NEW_YORK, ["09:00 17:00"], (2024, 3, 9, 22, 0), (2024, 3, 10, 13, 0)),
    # A window wholly inside the skipped hour does not happen that day.
    (NEW_YORK, ["02:00 02:30 -days Sun"], (2024, 3, 9, 12, 0), (2024, 3, 17, 6, 0)),
    (NEW_YORK, ["-exclude 02:15 02:45"], (2024, 3, 10, 5, 0), (2024, 3, 11, 6, 15)),
    # Fall back: boundaries in the repeated hour fire at their first occurrence only.
    (NEW_YORK, ["01:30 05:00"], (2024, 11, 3, 4, 0), (2024, 11, 3, 5, 30)),
    (NEW_YORK, ["01:30 05:00"], (2024, 11, 3, 5, 30), (2024, 11, 3, 10, 0)),
    (NEW_YORK, ["01:30 05:00"], (2024, 11, 3, 6, 10), (2024, 11, 3, 10, 0)),
    (NEW_YORK, ["-exclude 01:15 01:45"], (2024, 11, 3, 5, 20), (2024, 11, 3, 5, 45)),
    (NEW_YORK, ["-exclude 01:15 01:45"], (2024, 11, 3, 5, 45), (2024, 11, 4, 6, 15)),
    # 17:00 EDT to 09:00 EST is 17 hours.
    (NEW_YORK, ["09:00 17:00"], (2024, 11, 2, 21, 0), (2024, 11, 3, 14, 0)),
    (BERLIN, ["02:30 03:30"], (2024, 3, 30, 23, 0), (2024, 3, 31, 1, 0)),
    (BERLIN, ["02:30 03:30"], (2024, 3, 31, 1, 0), (2024, 3, 31, 1, 30)),
    (BERLIN, ["-exclude 02:15 02:45"], (2024, 3, 30, 23, 0), (2024, 4, 1, 0, 15)),
    (BERLIN, ["22:00 02:30 -days Sat"], (2024, 3, 30, 12, 0), (2024, 3, 30, 21, 0)),
    (BERLIN, ["22:00 02:30 -days Sat"], (2024, 3, 30, 21, 0), (2024, 3, 31, 1, 0)),
    (BERLIN, ["02:30 03:00"], (2024, 10, 27, 0, 0), (2024, 10, 27, 0, 30)),
    (BERLIN, ["02:30 03:00"], (2024, 10, 27, 0, 30), (2024, 10, 27, 2, 0)),
    (BERLIN, ["00:00 02:00"], (2024, 10, 26, 23, 0), (2024, 10, 27, 0, 0)),
]


@pytest.mark.parametrize("tz, words, now, expected", DST_NEXT_CHANGE_TABLE)
def test_next_change_across_dst(tz, words, now, expected):
    ranges = [tr(w) for w in words]
    result = next_change(ranges, utc(*now), tz)
    assert result == utc(*expected)
    assert allowed_at(ranges, result, tz) != allowed_at(ranges, utc(*now), tz)


DST_ALLOWED_TABLE = [
    # tz, ranges, instant (UTC), expected
    (NEW_YORK, ["02:30 04:00"], (2024, 3, 10, 6, 59), False),   # 01:59 EST
    (NEW_YORK, ["02:30 04:00"], (2024, 3, 10, 7, 0), True),     # 03:00 EDT
    (NEW_YORK, ["01:30 05:00"], (2024, 11, 3, 5, 29), False),   # 01:29 EDT
    (NEW_YORK, ["01:30 05:00"], (2024, 11, 3, 5, 30), True),    # 01:30 EDT
    (NEW_YORK, ["01:30 05:00"], (2024, 11, 3, 6, 5), True),     # 01:05 EST, second pass: stays open
    (NEW_YORK, ["-exclude 01:15 01:45"], (2024, 11, 3, 5, 30), False),  # 01:30 EDT
    (NEW_YORK, ["-exclude 01:15 01:45"], (2024, 11, 3, 6, 30), True),   # 01:30 EST: not re-entered
    (NEW_YORK, ["01:00 01:30"], (2024, 11, 3, 6, 10), False),   # 01:10 EST: window already closed
    (BERLIN, ["02:30 03:00"], (2024, 10, 27, 1, 15), True),     # 02:15 CET, second pass
    (BERLIN, ["02:30 03:00"], (2024, 10, 27, 2, 0), False),     # 03:00 CET
    (BERLIN, ["22:00 02:30 -days Sat"], (2024, 3, 31, 0, 59), True),   # 01:59 CET Sunday
    (BERLIN, ["22:00 02:30 -days Sat"], (2024, 3, 31, 1, 0), False),   # 03:00 CEST Sunday
]


@pytest.mark.parametrize("tz, words, when, expected", DST_ALLOWED_TABLE)
def test_allowed_across_dst(tz, words, when, expected):
    ranges = [tr(w) for w in words]
    assert allowed_at(ranges, utc(*when), tz) is expected
    assert allowed(ranges, datetime.fromtimestamp(utc(*when), tz)) is expected


def test_allowed_on_naive_and_first_pass_datetimes():
    ranges = [tr("-exclude 01:15 01:45")]
    assert allowed(ranges, local(NEW_YORK, 2024, 11, 3, 1, 30, fold=0)) is False
    assert allowed(ranges, local(NEW_YORK, 2024, 11, 3, 1, 30, fold=1)) is True
    assert allowed(ranges, datetime(2024, 11, 3, 1, 30, fold=1)) is False  # naive: wall time only


# --------------------------------------------------------------------------- property tests

ZONES = [UTC, NEW_YORK, BERLIN]
DST_INSTANTS = [utc(2024, 3, 10, 7), utc(2024, 11, 3, 6), utc(2024, 3, 31, 1), utc(2024, 10, 27, 1)]


@st.composite
def time_ranges(draw):
    start = draw(st.integers(0, 1439) | st.sampled_from([0, 60, 90, 120, 150, 180, 1320]))
    end = draw(st.integers(0, 1440) | st.sampled_from([0, 60, 90, 120, 150, 180, 1440]))
    days = draw(st.none() | st.frozensets(st.integers(0, 6), min_size=1))
    return TimeRange(start, end, draw(st.booleans()), days)


@st.composite
def instants(draw):
    near = draw(st.sampled_from(DST_INSTANTS + [None]))
    if near is None:
        return draw(st.floats(utc(2024, 1, 1), utc(2025, 1, 1)))
    return near + draw(st.floats(-2 * 86400, 2 * 86400))


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(
    ranges=st.lists(time_ranges(), min_size=1, max_size=3),
    now=instants(),
    tz=st.sampled_from(ZONES),
    fractions=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=20),
)
def test_allowed_is_constant_until_next_change(ranges, now, tz, fractions):
    change = next_change(ranges, now, tz)
    current = allowed_at(ranges, now, tz)
    end = now + SEARCH_DAYS * 86400 if change is None else change
    assert end > now
    for fraction in fractions:
        # Keep a millisecond clear of `end`: datetime rounds epochs to the microsecond.
        sample = max(now, min(now + (end - now) * fraction, end - 1e-3))
        assert allowed_at(ranges, sample, tz) == current
    if change is not None:
        assert allowed_at(ranges, change - 1e-3, tz) == current
        assert allowed_at(ranges, change, tz) != current


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ranges=st.lists(time_ranges(), min_size=1, max_size=3), now=instants(), tz=st.sampled_from(ZONES))
def test_next_change_matches_minute_scan(ranges, now, tz):
    """Boundaries fall on whole minutes, so scanning every minute finds the same change."""
    current = allowed_at(ranges, now, tz)
    t = math.floor(now / 60) * 60 + 60
    scanned = None
    while t <= now + 2 * 86400:
        if allowed_at(ranges, t, tz) != current:
            scanned = t
            break
        t += 60
    change = next_change(ranges, now, tz)
    if scanned is not None:
        assert change == scanned
    else:
        assert change is None or change > now + 2 * 86400


# --------------------------------------------------------------------------- periods

@pytest.mark.parametrize(
    "words, expected",
    [
        ("", Periods()),
        ("-poll 5", Periods(poll=5.0)),
        ("-poll 0.5 -exec 2", Periods(poll=0.5, exec=2.0)),
        ("-poll .25", Periods(poll=0.25)),
        ("-exec 0", Periods()),
        ("-timeout 30 -pending 60.5", Periods(timeout=30.0, pending=60.5)),
        ("-timeout none", Periods()),
        ("-timeout 0 -pending NONE", Periods()),
        ("-poll 1 -poll 3", Periods(poll=3.0)),
        ("-exec 10.", Periods(exec=10.0)),
        ("-poll 5m -exec 1h30m -timeout 90s -pending 1.5h", Periods(poll=300.0, exec=5400.0, timeout=90.0, pending=5400.0)),
        ("-timeout 2H", Periods(timeout=7200.0)),
    ],
)
def test_parse_periods(words, expected):
    assert parse_periods(words.split(), Periods()) == expected


def test_parse_periods_keeps_base_values():
    base = Periods(poll=2.0, exec=1.0, timeout=5.0, pending=7.0)
    assert parse_periods(["-exec", "3"], base) == Periods(poll=2.0, exec=3.0, timeout=5.0, pending=7.0)
    assert parse_periods(["-timeout", "none"], base).timeout is None


@pytest.mark.parametrize(
    "words, index, message",
    [
        ("-poll", 0, "missing seconds after -poll"),
        ("-poll -1", 1, "-poll must not be negative, got '-1'"),
        ("-exec -0.5", 1, "-exec must not be negative"),
        ("-poll abc", 1, "-poll expects seconds > 0 or a duration (90, 0.5, 5m, 1h30m), got 'abc'"),
        ("-poll 0", 1, "-poll must be more than 0 seconds"),
        ("-poll 0.0", 1, "-poll must be more than 0 seconds"),
        ("-exec nan", 1, "-exec expects seconds >= 0 or a duration (90, 0.5, 5m, 1h30m), got 'nan'"),
        ("-exec 5m30", 1, "got '5m30'"),
        ("-exec 5x", 1, "got '5x'"),
        ("-timeout -5m", 1, "-timeout must not be negative"),
        ("-exec inf", 1, "got 'inf'"),
        ("-exec 1e3", 1, "got '1e3'"),
        ("-timeout -3", 1, "-timeout must not be negative"),
        ("-timeout never", 1, "-timeout expects seconds >= 0 or a duration (90, 0.5, 5m, 1h30m); 0 or none for no limit, got 'never'"),
        ("-pending 1_000", 1, "got '1_000'"),
        ("-exec 2 -often 3", 2, "unknown option '-often', expected one of -poll, -exec, -timeout, -pending"),
        ("5", 0, "expected an option (-poll, -exec, -timeout, -pending), got '5'"),
        ("-poll " + "9" * 400, 1, "too large"),
        ("-exec none", 1, "-exec expects seconds >= 0"),
    ],
)
def test_parse_periods_errors(words, index, message):
    with pytest.raises(TimingError) as caught:
        parse_periods(words.split(), Periods())
    assert caught.value.word_index == index
    assert message in str(caught.value)


def test_periods_validates_and_prints():
    with pytest.raises(TimingError):
        Periods(poll=0)
    with pytest.raises(TimingError):
        Periods(exec=math.inf)
    with pytest.raises(TimingError):
        Periods(timeout=-1)
    assert str(Periods(poll=0.5, timeout=30)) == "-poll 0.5 -exec 0 -timeout 30 -pending none"
    assert parse_periods(str(Periods(poll=0.5, timeout=30)).split()) == Periods(poll=0.5, timeout=30)


# --------------------------------------------------------------------------- plan

WALL = utc(2024, 1, 1, 12, 0)  # Monday noon UTC
MONO = 1000.0


def run_plan(periods=Periods(), limits=Limits(), active=True, ranges=(), state=None,
             now_mono=MONO, now_wall=WALL, tz=UTC, **kwargs) -> Plan:
    return plan(periods, limits, active, list(ranges), state or TaskTiming(), now_mono, now_wall, tz, **kwargs)


@pytest.mark.parametrize(
    "limits, state, make, reason",
    [
        (Limits(), TaskTiming(), 1, PlanReason.MAKE),
        (Limits(npending=4), TaskTiming(), 4, PlanReason.MAKE),
        (Limits(npending=4), TaskTiming(made=5, outstanding=3), 1, PlanReason.MAKE),
        (Limits(npending=4), TaskTiming(made=5, outstanding=4), 0, PlanReason.PENDING_FULL),
        (Limits(nmax=10, npending=4), TaskTiming(made=8, outstanding=0), 2, PlanReason.MAKE),
        (Limits(nmax=10, npending=4), TaskTiming(made=9, outstanding=3), 1, PlanReason.MAKE),
        (Limits(npending=0), TaskTiming(), 0, PlanReason.PENDING_FULL),
    ],
)
def test_plan_limits_with_exec_zero(limits, state, make, reason):
    result = run_plan(limits=limits, state=state)
    assert (result.make, result.reason) == (make, reason)
    assert result.next_look == MONO + 1.0


@pytest.mark.parametrize("made, outstanding", [(10, 0), (10, 3), (12, 0)])
def test_plan_finished_never_looks_again(made, outstanding):
    result = run_plan(limits=Limits(nmax=10, npending=4), state=TaskTiming(made=made, outstanding=outstanding))
    assert result == Plan(0, math.inf, PlanReason.FINISHED)


def test_plan_nmax_zero_is_finished_at_once():
    assert run_plan(limits=Limits(nmax=0)).reason is PlanReason.FINISHED


def test_plan_paused_makes_nothing_and_waits_for_resume():
    assert run_plan(active=False, limits=Limits(npending=4)) == Plan(0, math.inf, PlanReason.PAUSED)


def test_plan_poll_period():
    assert run_plan(periods=Periods(poll=7.5)).next_look == MONO + 7.5
    assert run_plan(periods=Periods(poll=0.1), limits=Limits(npending=0)).next_look == MONO + 0.1


@pytest.mark.parametrize(
    "look_due, now, expected",
    [
        (1000.0, 1000.0, 1005.0),
        (1000.0, 1000.3, 1005.0),   # woke late: no drift
        (1000.0, 1012.0, 1015.0),   # fell behind: next grid point, no burst of catch-up looks
        (1000.0, 1005.0, 1010.0),
        (1003.0, 1000.0, 1005.0),   # a look before its due time (a job ended): plain now + poll
    ],
)
def test_plan_look_due_keeps_the_grid(look_due, now, expected):
    result = run_plan(periods=Periods(poll=5), now_mono=now, look_due=look_due)
    assert result.next_look == expected


@pytest.mark.parametrize(
    "last_launch, now, make, next_look, reason",
    [
        (None, 1000.0, 1, 1001.0, PlanReason.MAKE),
        (990.0, 1000.0, 1, 1001.0, PlanReason.MAKE),        # exec period (10 s) has passed
        (995.0, 1000.0, 0, 1001.0, PlanReason.EXEC_PERIOD),  # poll comes first
        (990.5, 1000.0, 0, 1000.5, PlanReason.EXEC_PERIOD),  # the exec period ends first
    ],
)
def test_plan_exec_period(last_launch, now, make, next_look, reason):
    state = TaskTiming(last_launch_mono=last_launch, made=3, outstanding=0)
    result = run_plan(periods=Periods(exec=10), limits=Limits(npending=4), state=state, now_mono=now)
    assert result == Plan(make, next_look, reason)


def test_plan_exec_period_wakes_exactly_at_its_end():
    """Waking at last_launch + exec must launch, even when the sum does not round-trip."""
    state = TaskTiming(last_launch_mono=0.1, made=1)
    periods = Periods(poll=100, exec=0.2)
    first = run_plan(periods=periods, state=state, now_mono=0.15)
    assert first.reason is PlanReason.EXEC_PERIOD
    second = run_plan(periods=periods, state=state, now_mono=first.next_look)
    assert second.make == 1


def test_plan_outside_window_sleeps_until_it_opens():
    ranges = [tr("12:30 13:00")]
    result = run_plan(ranges=ranges, periods=Periods(poll=1))
    assert result.make == 0 and result.reason is PlanReason.OUTSIDE_WINDOW
    # Opens in 30 min, but the wall clock is checked again within WALL_RECHECK.
    assert result.next_look == MONO + WALL_RECHECK
    soon = run_plan(ranges=ranges, now_wall=utc(2024, 1, 1, 12, 29, 30), now_mono=50.0)
    assert soon.next_look == 50.0 + 30.0
    slow_poll = run_plan(ranges=ranges, periods=Periods(poll=3600))
    assert slow_poll.next_look == MONO + 1800  # opens before the next poll


def test_plan_outside_window_with_no_opening_rechecks():
    ranges = [tr("-exclude 00:00 00:00")]
    result = run_plan(ranges=ranges, periods=Periods(poll=120))
    assert result == Plan(0, MONO + 120, PlanReason.OUTSIDE_WINDOW)


def test_plan_inside_window_makes_jobs():
    result = run_plan(ranges=[tr("11:00 13:00 -days Mon")], limits=Limits(npending=3))
    assert (result.make, result.reason) == (3, PlanReason.MAKE)


def test_plan_uses_the_zone():
    ranges = [tr("12:00 13:00")]
    assert run_plan(ranges=ranges, tz=UTC).make == 1
    assert run_plan(ranges=ranges, tz=BERLIN).make == 0  # 13:00 in Berlin


def test_plan_notices_a_wall_clock_jump():
    clock = FakeClock(start_mono=0.0, start_wall=utc(2024, 1, 1, 6, 0), tz=UTC)
    ranges = [tr("09:00 17:00")]
    state = TaskTiming()

    def look() -> Plan:
        return plan(Periods(), Limits(), True, ranges, state, clock.monotonic(), clock.wall(), clock.tz)

    first = look()
    assert first.reason is PlanReason.OUTSIDE_WINDOW and first.next_look == WALL_RECHECK
    clock.jump_wall(3 * 3600)  # someone sets the clock to 09:00; monotonic time has not moved
    clock.advance(first.next_look - clock.monotonic())
    second = look()
    assert (second.make, second.reason) == (1, PlanReason.MAKE)


def test_plan_window_open_is_converted_to_monotonic():
    clock = FakeClock(start_mono=500.0, start_wall=utc(2024, 1, 1, 8, 59, 15), tz=UTC)
    result = plan(Periods(), Limits(), True, [tr("09:00 17:00")], TaskTiming(),
                  clock.monotonic(), clock.wall(), clock.tz)
    assert result.next_look == 545.0
    clock.advance(result.next_look - clock.monotonic())
    assert allowed_at([tr("09:00 17:00")], clock.wall(), clock.tz)


def test_task_timing_records_launches_and_ends():
    state = TaskTiming()
    state.launched(10.0, count=3)
    state.ended()
    assert (state.made, state.outstanding, state.last_launch_mono) == (3, 2, 10.0)
    state.ended(5)
    assert state.outstanding == 0


@pytest.mark.parametrize("kwargs", [dict(nmax=-1), dict(npending=-1), dict(nmax=1.5), dict(npending=True)])
def test_limits_validate(kwargs):
    with pytest.raises(TimingError):
        Limits(**kwargs)


def test_due_key_orders_by_priority_then_age():
    tasks = [("low-old", 0, 1), ("high-new", 5, 9), ("high-old", 5, 2), ("mid", 1, 0)]
    ordered = sorted(tasks, key=lambda t: due_key(t[1], t[2]))
    assert [name for name, _, _ in ordered] == ["high-old", "high-new", "mid", "low-old"]


# --------------------------------------------------------------------------- timer heap

def test_timer_heap_orders_by_due_then_insertion():
    heap: TimerHeap[str] = TimerHeap()
    for due, item in [(5.0, "e"), (1.0, "a1"), (3.0, "c"), (1.0, "a2"), (1.0, "a3"), (2.0, "b")]:
        heap.push(due, item)
    assert heap.peek() == 1.0
    assert len(heap) == 6
    assert heap.pop_due(0.5) == []
    assert heap.pop_due(2.0) == ["a1", "a2", "a3", "b"]
    assert heap.peek() == 3.0
    assert heap.pop_due(math.inf) == ["c", "e"]
    assert heap.peek() is None and len(heap) == 0 and not heap


def test_timer_heap_cancel():
    heap: TimerHeap[str] = TimerHeap()
    first = heap.push(1.0, "first")
    second = heap.push(2.0, "second")
    assert heap.cancel(first) is True
    assert heap.cancel(first) is False
    assert len(heap) == 1
    assert heap.peek() == 2.0
    assert heap.pop_due(10.0) == ["second"]
    assert heap.cancel(second) is False  # already popped
    assert len(heap) == 0


def test_timer_heap_rejects_nan():
    with pytest.raises(ValueError):
        TimerHeap().push(math.nan, "x")


def test_timer_heap_reschedule_churn_stays_small():
    """10,000 tasks rescheduled many times: lazy deletion must not let the heap grow unbounded."""
    heap: TimerHeap[int] = TimerHeap()
    handles = {task: heap.push(float(task), task) for task in range(10_000)}
    for round_ in range(5):
        for task in range(10_000):
            heap.cancel(handles[task])
            handles[task] = heap.push(float(task + round_ + 1), task)
    assert len(heap) == 10_000
    assert len(heap._heap) <= 2 * 10_000 + 64
    assert heap.peek() == 5.0
    assert heap.pop_due(6.0) == [0, 1]


def test_timer_heap_idle_tasks_cost_one_peek():
    heap: TimerHeap[int] = TimerHeap()
    for task in range(10_000):
        heap.push(3600.0 + task, task)
    assert heap.pop_due(1.0) == []
    assert heap.peek() == 3600.0


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("0.5", 0.5), (".25", 0.25), ("90s", 90.0), ("5m", 300.0),
                                           ("1.5h", 5400.0), ("1h30m", 5400.0), ("2h0m5s", 7205.0), ("5 m", 300.0),
                                           ("3M", 180.0)])
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5m30", "1e3", "-5", "5x", "1h 30m", "nan", "inf", "5mm"])
def test_not_a_duration(text):
    assert duration_seconds(text) is None


def test_wait_and_retain_take_durations_as_periods_do():
    w = World()
    with pytest.raises(Exception, match="`run` first"):   # (the timeout was read)
        w.run("wait -timeout 1m")
    assert "more than 5m ago" in w.run("retain -age 300") and "more than 90m ago" in w.run("retain -age 1h30m")
    with pytest.raises(Exception, match=r"wait: -timeout expects seconds >= 0 or a duration \(90, 5m, 1h30m\), got '5x'"):
        w.run("wait -timeout 5x")
    with pytest.raises(Exception, match="retain: -age expects seconds >= 0 or a duration"):
        w.run("retain -age -5")
