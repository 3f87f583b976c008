"""Tests of the clock seam: the fake clock's moves and the system clock's basic contract."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from psched.lang.clock import FAKE_START_WALL, Clock, FakeClock, SystemClock, local_zone

BERLIN = ZoneInfo("Europe/Berlin")


def test_fake_clock_defaults():
    clock = FakeClock()
    assert clock.monotonic() == 0.0
    assert clock.wall() == FAKE_START_WALL
    assert clock.now_local() == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert clock.now_local().weekday() == 0  # a Monday, as documented


def test_advance_moves_both_clocks():
    clock = FakeClock(start_mono=100.0, start_wall=1_000_000.0)
    assert clock.advance(2.5) == 102.5
    assert clock.monotonic() == 102.5
    assert clock.wall() == 1_000_002.5


def test_jump_wall_leaves_monotonic_alone():
    clock = FakeClock(start_mono=5.0, start_wall=1_000_000.0)
    clock.jump_wall(3600)
    assert clock.monotonic() == 5.0
    assert clock.wall() == 1_003_600.0
    clock.jump_wall(-7200)
    assert clock.wall() == 996_400.0
    clock.set_wall(42.0)
    assert (clock.wall(), clock.monotonic()) == (42.0, 5.0)


@pytest.mark.parametrize("bad", [-1.0, -1e-9, math.nan])
def test_advance_refuses_going_back(bad):
    clock = FakeClock()
    with pytest.raises(ValueError):
        clock.advance(bad)
    assert clock.monotonic() == 0.0


def test_localtime_uses_injected_zone_and_sets_fold():
    clock = FakeClock(tz=BERLIN)
    # 2024-10-27 00:30 UTC is 02:30 CEST (first pass); 01:30 UTC is 02:30 CET (second pass).
    first = clock.localtime(datetime(2024, 10, 27, 0, 30, tzinfo=timezone.utc).timestamp())
    second = clock.localtime(datetime(2024, 10, 27, 1, 30, tzinfo=timezone.utc).timestamp())
    assert (first.hour, first.minute, first.fold) == (2, 30, 0)
    assert (second.hour, second.minute, second.fold) == (2, 30, 1)
    assert first.tzinfo is BERLIN
    assert clock.tz is BERLIN


def test_listeners_are_told_of_every_move():
    clock = FakeClock()
    seen: list[float] = []

    def listener() -> None:
        seen.append(clock.wall())

    clock.add_listener(listener)
    clock.advance(1)
    clock.jump_wall(10)
    clock.remove_listener(listener)
    clock.remove_listener(listener)  # removing twice is harmless
    clock.advance(1)
    assert seen == [FAKE_START_WALL + 1, FAKE_START_WALL + 11]


def test_system_clock_contract():
    clock = SystemClock(tz=BERLIN)
    assert isinstance(clock, Clock)
    first = clock.monotonic()
    second = clock.monotonic()
    assert second >= first
    assert abs(clock.wall() - time.time()) < 5
    now = clock.now_local()
    assert now.tzinfo is BERLIN
    assert abs(now.timestamp() - time.time()) < 5


def test_local_zone_follows_tz_variable(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    assert local_zone() == ZoneInfo("America/New_York")
    monkeypatch.setenv("TZ", "Not/AZone")
    zone = local_zone()  # falls back without raising
    assert datetime.now(zone).utcoffset() is not None
    assert SystemClock().localtime(0.0).tzinfo is not None
