"""NTP's arithmetic on four timestamps (pclient.clockmath)."""

import pytest

from pclient.clockmath import ClockSample, best_sample, sample


@pytest.mark.parametrize("t0, t1, t2, t3, offset, delay", [
    (100.0, 100.5, 100.5, 100.0, 0.5, 0.0),            # peer 0.5 s ahead, instant link
    (100.0, 100.6, 100.6, 100.2, 0.5, 0.2),            # 0.1 s each way
    (100.0, 99.1, 99.3, 100.4, -1.0, 0.2),             # peer behind, 0.2 s spent there
    (100.0, 100.0, 100.0, 100.0, 0.0, 0.0),
    (100.0, 100.3, 100.3, 100.2, 0.2, 0.2),            # asymmetric: 0.3 out, -0.1 back
])
def test_offset_and_round_trip(t0, t1, t2, t3, offset, delay):
    got = sample(t0, t1, t2, t3)
    assert got.offset == pytest.approx(offset)
    assert got.delay == pytest.approx(delay)
    assert got.error == pytest.approx(delay / 2)


def test_a_stepped_clock_gives_no_negative_round_trip():
    assert sample(100.0, 50.0, 60.0, 100.0).delay == 0.0


def test_the_shortest_round_trip_wins():
    samples = [ClockSample(0.3, 0.02), ClockSample(0.25, 0.001), ClockSample(0.2, 0.01)]
    assert best_sample(samples) == ClockSample(0.25, 0.001)
    assert best_sample([]) is None


@pytest.mark.parametrize("offset, delay, correction", [
    (0.0004, 0.001, 0.0),          # within its error (0.5 ms): cannot be told from zero
    (-0.0005, 0.001, 0.0),
    (0.0006, 0.001, 0.0006),       # beyond it: corrected
    (-2.5, 0.01, -2.5),
])
def test_an_offset_within_its_error_is_no_correction(offset, delay, correction):
    assert ClockSample(offset, delay).correction == correction
