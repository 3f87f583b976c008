"""The election, the lease and the fencing token against a real etcd (psched.scheduler.ha, .etcd)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from psched.scheduler.etcd import Etcd, EtcdError, put
from psched.scheduler.ha import Elector, Fenced, parse_ha_url

pytestmark = pytest.mark.timeout(60)

TTL = 2


def elector(etcd, pool: str, me: str, timeout: float = 0.5, ttl: int = TTL) -> Elector:
    return Elector(Etcd([etcd.url], timeout=timeout), f"/psched/{pool}", me, ttl)


def test_ha_url_gives_endpoints_and_pool():
    assert parse_ha_url("http://a:2379,http://b:2379/night") == (["http://a:2379", "http://b:2379"], "/psched/night")
    assert parse_ha_url("127.0.0.1:2379") == (["http://127.0.0.1:2379"], "/psched/default")


def test_one_leads_the_other_takes_over_when_its_lease_ends_and_old_writes_are_refused(etcd):
    async def scenario():
        first, second = elector(etcd, "p1", "first"), elector(etcd, "p1", "second")
        frozen = time.monotonic()
        first.monotonic = lambda: frozen  # a leader whose time stands still (a paused VM) believes it may act
        lead = await first.campaign()
        assert lead.who == "first" and first.may_act()
        await first.write([put(first.key("task", "t"), b'{"made": 1}')])

        waiting = asyncio.ensure_future(second.campaign())
        await asyncio.sleep(0.3)          # a standby polls; it must not lead while the lease holds
        assert not waiting.done()
        assert second.seen is not None and second.seen.token == lead.token

        # `first` stops renewing (as if it hung): it may act only until act_until, before the
        # lease can end; then `second` leads with a higher token
        started = time.monotonic()
        taken = await asyncio.wait_for(waiting, 3 * TTL)
        took = time.monotonic() - started
        assert taken.token > lead.token
        assert first.act_until < started + TTL          # by the true clock, it stopped before its lease could end
        assert took <= TTL + 1.0

        assert first.may_act()                          # ... but its clock says otherwise: etcd refuses it
        with pytest.raises(Fenced, match=f"token {lead.token} is no longer the leader's"):
            await first.write([put(first.key("task", "t"), b'{"made": 99}')])
        assert first.refusals == 1 and not first.may_act()
        await second.write([put(second.key("task", "t"), b'{"made": 2}')])
        state = await second.read_state()
        assert state["task"]["t"] == {"made": 2}
        await second.resign()
        return took

    asyncio.run(scenario())


def test_a_leader_that_renews_keeps_leading_and_resigning_hands_over_at_once(etcd):
    async def scenario():
        first, second = elector(etcd, "p2", "first"), elector(etcd, "p2", "second")
        lead = await first.campaign()
        holding = asyncio.ensure_future(first.hold())
        waiting = asyncio.ensure_future(second.campaign())
        await asyncio.sleep(3 * TTL)      # three lease lengths: renewed all along
        assert first.may_act() and not holding.done() and not waiting.done()
        holding.cancel()
        started = time.monotonic()
        await first.resign()
        taken = await asyncio.wait_for(waiting, 2)
        assert taken.token > lead.token
        assert time.monotonic() - started < TTL   # no waiting out the lease
        await second.resign()

    asyncio.run(scenario())


def test_etcd_restarted_within_the_lease_the_leader_keeps_leading(etcd):
    ttl = 8  # a restart of etcd here takes 1 to 3 s: well within what the leader may act (6 s)

    async def scenario():
        first = elector(etcd, "p3", "first", timeout=0.3, ttl=ttl)
        lead = await first.campaign()
        holding = asyncio.ensure_future(first.hold())
        restarted = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, etcd.stop)
        await asyncio.get_running_loop().run_in_executor(None, etcd.restart)
        assert time.monotonic() - restarted < ttl - first.guard, "etcd took too long to restart for this test"
        await asyncio.sleep(ttl / 2)     # renewals after the restart
        assert not holding.done(), "it stepped down"
        assert first.may_act()
        await first.write([put(first.key("task", "t"), b'{"made": 3}')])  # the same token still holds
        holding.cancel()
        await first.resign()
        return lead

    asyncio.run(scenario())


def test_etcd_gone_for_longer_than_the_lease_the_leader_steps_down_cleanly(etcd):
    async def scenario():
        first = elector(etcd, "p4", "first", timeout=0.3)
        await first.campaign()
        holding = asyncio.ensure_future(first.hold())
        await asyncio.sleep(0.5)
        etcd.pause()                       # unreachable: nothing answers, nobody is told
        paused = time.monotonic()
        try:
            reason = await asyncio.wait_for(holding, 3 * TTL)
            stepped = time.monotonic() - paused
        finally:
            etcd.resume()
        assert "could not be renewed in time" in reason
        assert not first.may_act()
        assert stepped < TTL, f"stepped down {stepped:.2f} s after etcd went: the lease may have ended first"
        with pytest.raises(Fenced, match="stepped down"):
            await first.write([put(first.key("task", "t"), b'{"made": 4}')])

    asyncio.run(scenario())


def test_an_unreachable_etcd_is_an_error_naming_it():
    async def scenario():
        client = Etcd(["http://127.0.0.1:9"], timeout=0.5)
        with pytest.raises(EtcdError, match="127.0.0.1:9"):
            await client.get(b"x")

    asyncio.run(scenario())
