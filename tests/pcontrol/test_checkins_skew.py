"""Missed check-ins (checkins.CheckIns) and SKEWED hosts (skew.SkewWatch) as tables: pure, given
the time; the alerter logs only (no mail settings), its episodes are what is checked."""

from __future__ import annotations

import pytest

from pcontrol.alerts import Alerter, AlertNotice
from pcontrol.checkins import CheckIns, Verdict
from pcontrol.model import Host
from pcontrol.skew import SkewWatch
from pcontrol.wire import EventKind, Interest, interest_of


@pytest.mark.parametrize("steps,expected", [
    # (what happens at t, verdict): told to come at 10, grace 5, a run time every 10 after a miss
    ([("tick", 14.9)], [Verdict.NONE]),
    ([("tick", 15.0)], [Verdict.MISSED]),
    ([("tick", 15), ("tick", 25), ("tick", 35)], [Verdict.MISSED, Verdict.MISSED, Verdict.ALERT]),
    ([("tick", 35)], [Verdict.ALERT]),                          # three at once: one alert
    ([("tick", 35), ("tick", 45), ("tick", 95)], [Verdict.ALERT, Verdict.MISSED, Verdict.MISSED]),
    ([("tick", 35), ("in", 40)], [Verdict.ALERT, Verdict.RECOVERED]),
    ([("tick", 25), ("in", 26), ("tick", 40)], [Verdict.MISSED, Verdict.NONE, Verdict.NONE]),
    ([("tick", 25), ("in", 26), ("tick", 41), ("tick", 55)], [Verdict.MISSED, Verdict.NONE, Verdict.MISSED,
                                                              Verdict.MISSED]),  # the count restarted
    ([("in", 9)], [Verdict.NONE]),
])
def test_checkins(steps, expected):
    book = CheckIns(threshold=3, grace=5, interval=10)
    book.told(10)
    got = []
    for what, t in steps:
        if what == "tick":
            got.append(book.tick(t))
        else:  # a check-in: then it is told its next run time, as the hub does
            got.append(book.checked_in(t))
            book.told(t + 10)
    assert got == expected


def test_a_probe_never_told_misses_nothing():
    assert CheckIns().tick(1e9) is Verdict.NONE


@pytest.mark.parametrize("offsets,flagged,episodes", [
    ([0.2, -0.9, 0.999], False, []),
    ([1.5], True, ["alert"]),
    ([1.5, 2.0, -3.0], True, ["alert"]),                 # one alert per episode
    ([-1.2, 0.1], False, ["alert", "recovery"]),
    ([1.2, 0.1, 1.3], True, ["alert", "recovery", "alert"]),
])
def test_skew(offsets, flagged, episodes):
    alerter = Alerter(None)
    seen: list[str] = []
    alerter.on_alert.append(lambda notice: seen.append(notice.state))
    changed: list[str] = []
    watch = SkewWatch(alerter, 1.0, lambda host: changed.append(host.name))
    host = Host("h")
    for offset in offsets:
        watch.measured(host, offset, 0.001)
    assert ("skewed" in host.agent) is flagged
    assert seen == episodes
    assert len(changed) == len(episodes)
    if flagged:
        assert host.agent["skewed"] == f"clock offset {offsets[-1]:+.3f} s (over 1 s)"


def test_an_episodes_notice_names_its_host_and_condition_and_a_one_off_neither():
    alerter = Alerter(None)
    seen: list[AlertNotice] = []
    alerter.on_alert.append(seen.append)
    SkewWatch(alerter, 1.0).measured(Host("h"), 2.0, 0.001)
    alerter.send("by a script", "body")
    assert [(n.state, n.host, n.condition) for n in seen] == [("alert", "h", "skew"), ("alert", "", "")]
    assert seen[0].to_record() == {"state": "alert", "host": "h", "condition": "skew",
                                   "subject": "pcontrol: host h is SKEWED", "body": seen[0].body}
    assert interest_of(EventKind.ALERT, seen[0].to_record()) is Interest.ALERT
    assert Interest.parse_list("end,alert") == {Interest.END, Interest.ALERT}
