"""Missed check-ins (checkins.CheckIns) and SKEWED hosts (skew.SkewWatch) as tables: pure, given
the time; the alerter logs only (no mail settings), its episodes are what is checked. The pull
hub's missed alert (pull.PullHub.tick) on a clock the test holds."""

from __future__ import annotations

import asyncio
import os

import pytest

from pclient.pullwire import Hello, Proof, pull_proof
from pcontrol.alerts import Alerter, AlertNotice
from pcontrol.checkins import CheckIns, Verdict
from pcontrol.model import Host
from pcontrol.pull import PullHub, PullSettings
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


@pytest.mark.parametrize("ticks,count", [
    ([15, 25, 35], 3),          # the hub's check saw each run time go by: the third makes the alert
    ([15, 25, 45], 4),          # a late check saw two go by at once (a loaded machine): it says 4
])
def test_the_missed_alert_names_the_run_times_that_went_by_when_it_was_sent(tmp_path, ticks, count):
    """PullHub's check of misses on the clock the test holds: one alert mail whose subject and
    body count the run times that went by when the check saw the threshold passed (more than
    --misses when two went by between two checks); the next check-in, one recovery."""
    now = [1000.0]
    hosts = {"p": Host("p", pull=True)}
    alerter = Alerter(None)
    seen: list[AlertNotice] = []
    alerter.on_alert.append(seen.append)
    hub = PullHub(tmp_path / "pull", PullSettings(interval=10, grace=5, misses=3), alerter, hosts,
                  clock=lambda: now[0])
    key = bytes.fromhex(hub.create_key("p"))

    def check_in() -> None:
        challenge = os.urandom(32)
        proof = Proof(pull_proof(key, "p", challenge), now[0], now[0])
        assert hub.check_in(Hello("p", now[0]), proof, challenge, now[0], now[0]).next == now[0] + 10

    async def main() -> None:
        hub.open_link("p", lambda link, message: None, lambda link, reason: None)
        check_in()  # told to come back at 1010: missed at 1015, then every 10 s
        try:
            for tick in ticks:
                now[0] = 1000.0 + tick
                hub.tick()
            assert [(n.state, n.subject) for n in seen] == [("alert", f"pcontrol: probe p missed {count} run times")]
            assert f"has not checked in for {count} consecutive run times" in seen[0].body
            assert hosts["p"].agent["pull_missed"] == count
            now[0] += 1
            check_in()
            assert [(n.state, n.subject) for n in seen[1:]] == [("recovery", "pcontrol: probe p is back")]
            assert hosts["p"].agent["pull_missed"] == 0
        finally:
            await hub.close()

    asyncio.run(main())
