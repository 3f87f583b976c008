"""`clock` (psched.lang.commands.clock): the time from an injected FakeClock, formats and scans checked
against Tcl 8.6 (tclsh)."""

from zoneinfo import ZoneInfo

import pytest

import psched
from psched.lang.clock import FakeClock
from psched.lang.errors import SchedError

NOW = 1_700_000_000  # Tue Nov 14 22:13:20 2023 UTC


def make(tz=None):
    interp = psched.Interp()
    interp.clock = FakeClock(start_wall=NOW + 0.25, tz=tz)
    return interp


def run(script, tz=None):
    return make(tz).eval(script)


CASES = [
    ("clock seconds", str(NOW)),
    ("clock milliseconds", str(NOW * 1000 + 250)),
    ("clock microseconds", str(NOW * 1_000_000 + 250_000)),
    ("clock format 0 -gmt 1", "Thu Jan 01 00:00:00 GMT 1970"),
    ("clock format [clock seconds]", "Tue Nov 14 22:13:20 UTC 2023"),  # the fake clock's zone
    ("clock format 1700000000 -gmt 1 -format {%Y-%m-%d %H:%M:%S}", "2023-11-14 22:13:20"),
    ("clock format 1700000000 -gmt 1 -format {%a %A %b %B %h %C %d %e %g %G %H %I %j %J %k %l %m %M %N %p %P %s %S %u %U %V %w %W %y %Y %z %Z %%}",
     "Tue Tuesday Nov November Nov 20 14 14 23 2023 22 10 318 2460263 22 10 11 13 11 PM pm 1700000000 20 2 46 46 2 46 23 2023 +0000 GMT %"),
    ("clock format 1700000000 -gmt 1 -format {%c|%D|%r|%R|%T|%x|%X|%+}",
     "Tue Nov 14 22:13:20 2023|11/14/2023|10:13:20 pm|22:13|22:13:20|11/14/2023|22:13:20|Tue Nov 14 22:13:20 GMT 2023"),
    ("clock format 1704067200 -gmt 1 -format {%U %W %V %G %j}", "00 01 01 2024 001"),
    ("clock format 1735603200 -gmt 1 -format {%U %W %V %G %g %j %a}", "52 53 01 2025 25 366 Tue"),
    ("clock format 1262304000 -gmt 1 -format {%U %W %V %G %g %j %a}", "00 00 53 2009 09 001 Fri"),
    ("clock format 1700000000 -timezone :Europe/Paris", "Tue Nov 14 23:13:20 CET 2023"),
    ("clock format 1700000000 -timezone :America/New_York -format {%H:%M %Z %z}", "17:13 EST -0500"),
    ("clock format 1690000000 -timezone :Europe/Paris -format {%H:%M %Z %z}", "06:26 CEST +0200"),
    ("clock format 1700000000 -timezone :UTC", "Tue Nov 14 22:13:20 UTC 2023"),
    ("clock format 1700000000 -timezone +0530 -format {%H:%M %z}", "03:43 +0530"),
    ("clock format -86400 -gmt 1", "Wed Dec 31 00:00:00 GMT 1969"),
    ("clock format 0 -gmt 1 -format {%Q}", "%Q"),  # an unknown group stays as written
    # scan, free form
    ('clock scan "2026-11-22 14:00:00" -gmt 1', "1795356000"),
    ('clock scan "2026-11-22" -gmt 1', "1795305600"),
    ('clock scan "2026-11-22T14:00:00" -gmt 1', "1795356000"),
    ('clock scan "2026-11-22 14:00" -gmt 1', "1795356000"),
    ('clock scan "20261122T140000" -gmt 1', "1795356000"),
    ('clock scan "11/22/2026" -gmt 1', "1795305600"),
    ('clock scan "11/22/2026 2:00 pm" -gmt 1', "1795356000"),
    ('clock scan "14:00" -gmt 1 -base 1700000000', "1699970400"),
    ('clock scan "14:00:30" -gmt 1 -base 1700000000', "1699970430"),
    ('clock scan "14:00"', "1699970400"),  # on the (fake) clock's date
    ('clock scan "2026-11-22 14:00" -timezone :Europe/Paris', "1795352400"),
    ('clock scan "2026-11-22 14:00:00 UTC"', "1795356000"),
    ('clock scan "2026-11-22 14:00:00 +0100" -gmt 1', "1795352400"),
    ("clock scan now", str(NOW)),
    ("clock scan today -gmt 1", "1699920000"),
    ("clock scan tomorrow -gmt 1", "1700006400"),
    ('clock scan "tomorrow 06:00" -gmt 1', "1700028000"),
    ('clock scan "Nov 22, 2026" -gmt 1', "1795305600"),
    ('clock scan "22 Nov 2026 14:00 UTC"', "1795356000"),
    ('clock scan "Sun Nov 22 14:00:00 GMT 2026"', "1795356000"),  # clock format's own layout
    ('clock scan "20261122" -gmt 1', "1795305600"),
    ('clock scan "Thursday" -gmt 1 -base 1700000000', "1700092800"),  # the next Thursday
    ('clock scan "11/22/38" -gmt 1', "2173996800"),  # 00-38 are 20xx
    # scan with -format
    ('clock scan "22/11/2026 14:05" -format "%d/%m/%Y %H:%M" -gmt 1', "1795356300"),
    ('clock scan "Nov 22 2026" -format "%b %d %Y" -gmt 1', "1795305600"),
    ('clock scan "14:05" -format "%H:%M" -gmt 1 -base 1700000000', "1699970700"),
    ('clock scan "1700000000" -format "%s"', "1700000000"),
    ('clock scan "26-11-22" -format "%y-%m-%d" -gmt 1', "1795305600"),
    ('clock scan "02:30 PM" -format "%I:%M %p" -gmt 1 -base 1700000000', "1699972200"),
    ('clock scan "2026-322" -format "%Y-%j" -gmt 1', "1794960000"),
    ('clock scan "2026" -format "%Y" -gmt 1', "1767225600"),  # differs: Tcl would use the base date
    # add
    ("clock add 1700000000 1 day -gmt 1", "1700086400"),
    ("clock add 1700000000 2 hours 30 minutes", "1700009000"),
    ("clock add 1706659200 1 month -gmt 1", "1709164800"),
    ("clock add 1700000000 1 year -gmt 1", "1731622400"),
    ("clock add 1700000000 -1 week -gmt 1", "1699395200"),
    # a round trip in a zone with daylight saving
    ('clock format [clock scan "2024-07-01 12:00" -timezone :Europe/Paris] -timezone :Europe/Paris -format "%Y-%m-%d %H:%M %Z"',
     "2024-07-01 12:00 CEST"),
]


@pytest.mark.parametrize("script,expected", CASES)
def test_clock(script, expected):
    assert run(script) == expected


def test_local_zone_comes_from_the_injected_clock():
    interp = make(ZoneInfo("Asia/Tokyo"))
    assert interp.eval("clock format 0 -format {%H:%M %Z}") == "09:00 JST"
    assert interp.eval('clock scan "1970-01-01 09:00"') == "0"


def test_fake_clock_moves_clock_seconds():
    interp = make()
    interp.clock.advance(90)
    assert interp.eval("clock seconds") == str(NOW + 90)


def test_system_clock_is_used_without_injection():
    import time

    before = int(time.time())
    got = int(psched.Interp().eval("clock seconds"))
    assert before <= got <= int(time.time())


ERRORS = [
    ("clock format abc", 'expected integer but got "abc"'),
    ("clock format 0 -bogus 1", 'bad option "-bogus"'),
    ("clock format 0 -gmt maybe", 'expected boolean value but got "maybe"'),
    ("clock format 0 -timezone :No/Where", 'time zone ":No/Where" not found'),
    ('clock scan "garbage"', 'unable to convert date-time string "garbage"'),
    ('clock scan "2026-13-45" -gmt 1', 'unable to convert date-time string "2026-13-45"'),
    ('clock scan "x" -format "%Y"', "does not match supplied format"),
    ('clock scan "x" -format "%Q"', 'unsupported format group "%Q"'),
    ("clock add 1700000000 3 fortnights", 'bad unit "fortnights"'),
    ("clock add 1700000000 3", "wrong # args"),
    ("clock format 99999999999999999", "out of range"),
    ("clock bogus", 'unknown subcommand "bogus"'),
    ("clock clicks -hours", 'bad option "-hours"'),
]


@pytest.mark.parametrize("script,message", ERRORS)
def test_clock_errors(script, message):
    with pytest.raises(SchedError) as info:
        run(script)
    assert message in info.value.message
