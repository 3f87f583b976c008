"""Failover between real `sched --serve --ha` processes, one private etcd for the module.

A periodic task fires every second on the leader; each job appends its run number (the task's
count, kept in etcd under the leader's token) and the line its task.exec took from a queue (kept
in etcd in the same transaction) to one file. Across a failover every run number appears exactly
once, in order, never two within the period, and each queue line is taken once, in order."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from hapool import Pool, check_each_run_once
from waiting import wait_until_sync

pytestmark = pytest.mark.timeout(120)

TTL = 2
PERIOD = 1.0


@pytest.fixture
def pool(etcd, tmp_path: Path, request):
    made = Pool(tmp_path, f"{etcd.url}/{request.node.name[:40]}", ttl=TTL, period=PERIOD)
    yield made
    made.close()


def test_kill9_of_the_leader_the_standby_goes_on_and_each_run_fires_once(pool, etcd):
    a = pool.member("a")
    a.wait_log("serving")
    b = pool.member("b")
    b.wait_log("standby: ")
    wait_until_sync(lambda: len(pool.runs()) >= 3, "the leader has fired 3 runs", 30)
    asked = pool.attach(b, "status")          # a standby runs no command: it says who leads
    assert asked.returncode == 1
    assert f"this server stands by in its pool; {a.name_in_pool} leads since " in asked.stderr.replace(
        f" ({pool.prefix})", ""), asked.stderr
    before = pool.kill9_between_runs(a, etcd)   # a run under way would die with `a`, not to run again
    killed = time.monotonic()
    took_over = b.wait_log("taken over: task tick", 3 * TTL + 10)
    wait_until_sync(lambda: len(pool.runs()) >= before + 3, "the new leader has fired 3 runs", 30)
    status = pool.attach(b, "status")
    assert status.returncode == 0, status.stderr
    assert f"ha: leader; {b.name_in_pool} leads since " in status.stdout, status.stdout
    token = int(status.stdout.rsplit("(token ", 1)[1].split(")")[0])
    assert token > int(a.text().split("(token ", 1)[1].split(")")[0])
    assert "; lease 2 s" in status.stdout
    b.stop()
    runs = pool.runs()
    check_each_run_once(runs, PERIOD)
    assert took_over - killed < 2 * TTL + 1, f"the standby led {took_over - killed:.2f} s after the kill"
    text = b.text()
    assert f"task tick: made {before}, " in text, text
    assert "taken over: queue work: " in text
    prefix = pool.prefix
    assert f"{prefix}/leader" not in etcd.keys(prefix + "/"), "b gave the lead up as it stopped"
    unplaced = [key.rsplit("/", 2)[1] + "/" + key.rsplit("/", 1)[1] for key in etcd.keys(prefix + "/state/pending/")]
    # b placed the jobs `a` made and never placed; one b made as it was stopped may wait for the next leader
    assert all(int(key.rsplit("/", 1)[1]) > len(runs) for key in unplaced), (unplaced, len(runs))
    assert f"{prefix}/state/task/tick" in etcd.keys(prefix + "/")


def test_a_leader_cut_from_etcd_stops_before_its_lease_ends_and_comes_back_as_a_standby(pool, etcd):
    a, relay = pool.member_behind_relay("a")
    a.wait_log("serving")
    b = pool.member("b")
    b.wait_log("standby: ")
    wait_until_sync(lambda: len(pool.runs()) >= 3, "the leader has fired 3 runs", 30)
    c = pool.member("c")                      # a third member, stopped as a standby
    c.wait_log("standby: ")
    stopped = pool.stop_command(c)
    assert stopped.returncode == 0, stopped.stderr
    assert c.proc.wait(15) == 0 and "leading:" not in c.text()
    os.kill(relay.pid, signal.SIGSTOP)     # a cut network: nothing passes, nobody is told
    cut = time.monotonic()
    stepped = a.wait_log("no longer the leader", 3 * TTL)
    led = b.wait_log("leading:", 3 * TTL + 10)
    last_by_a = max(n for n, _ in pool.runs())
    assert stepped - cut < TTL, f"a stopped acting {stepped - cut:.2f} s after the cut: its lease might have ended"
    assert stepped < led
    wait_until_sync(lambda: len(pool.runs()) >= last_by_a + 4, "b has fired 3 runs", 30)
    offset = len(a.text())
    os.kill(relay.pid, signal.SIGCONT)     # healed: a is a standby now, b goes on leading
    a.wait_log("standby: ", 20, after=offset)
    assert "starting again as a standby" in a.text()
    assert "leading:" not in a.text()[offset:]
    wait_until_sync(lambda: len(pool.runs()) >= last_by_a + 6, "b goes on after the heal", 30)
    b.stop()
    a.stop()
    check_each_run_once(pool.runs(), PERIOD)


def test_etcd_restarted_the_leader_rides_it_out(etcd, tmp_path):
    ttl = 8   # etcd restarts here in 1 to 3 s; the leader may act 6 s after its last renewal
    pool = Pool(tmp_path, f"{etcd.url}/restart", ttl=ttl, period=PERIOD)
    try:
        a = pool.member("a")
        a.wait_log("serving")
        wait_until_sync(lambda: len(pool.runs()) >= 2, "the leader fires", 30)
        started = time.monotonic()
        etcd.stop()
        a.wait_log("cannot renew the lease yet", ttl)            # the leader has seen etcd gone
        a.wait_log("etcd did not take our state yet", ttl)       # ... and a job wait for its record
        etcd.restart()
        assert time.monotonic() - started < ttl * 3 / 4, "etcd took too long to restart for this test"
        count = len(pool.runs())
        wait_until_sync(lambda: len(pool.runs()) >= count + 3, "the leader goes on after the restart", 30)
        assert a.alive() and "no longer the leader" not in a.text(), a.text()
        assert a.text().count("leading:") == 1
        a.stop()
        check_each_run_once(pool.runs(), PERIOD)
    finally:
        pool.close()
