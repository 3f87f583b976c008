"""The members of a pool of schedulers (sched --serve --ha) and where a prompt reaches each one.

    members = Members(etcd, "/psched/pool", me="host-a pid 4711", address="10.0.0.1:7000", ttl=5)
    await members.join()                            # our entry put, the list read (once)
    task = asyncio.ensure_future(members.run())     # registers, renews, reads the others
    await members.refresh()                         # {who: "HOST:PORT"} of every member, read now
    members.address_of(leadership.who)              # where the leader's prompts attach (or None)
    await members.leave()                           # a clean stop: gone at once

A member that listens on TCP puts `PREFIX/member/WHO` = {"who", "address"} under a lease of its
own (not the leader's: a standby has one too), renewed every ttl/3; a member killed disappears
when its lease ends. The leader's key says who leads (psched.scheduler.ha); this says where that
member listens, so that a standby can carry its prompts on to the leader and a prompt whose
member went away can reach another. A member that does not listen only reads.

Nothing here is fenced: an address is a hint, and whoever uses it proves the pool's secret.
"""

from __future__ import annotations

import asyncio
import json
import logging

from .etcd import Etcd, EtcdError, put

log = logging.getLogger(__name__)

__all__ = ["Members"]


class Members:
    """This member's entry in the pool's list, and the list as last read."""

    def __init__(self, etcd: Etcd, prefix: str, me: str, address: str | None, ttl: int):
        self.etcd = etcd
        self.prefix = prefix.rstrip("/")
        self.me = me
        self.address = address
        self.ttl = max(2, int(ttl))
        self.known: dict[str, str] = {}     # who -> HOST:PORT, as last read
        self._lease: int | None = None

    @property
    def base(self) -> bytes:
        return f"{self.prefix}/member/".encode()

    def address_of(self, who: str) -> str | None:
        return self.known.get(who)

    def addresses(self) -> tuple[str, ...]:
        """Every member's address as last read, this one's first."""
        others = sorted(a for who, a in self.known.items() if who != self.me)
        return tuple(([self.address] if self.address else []) + others)

    async def refresh(self) -> dict[str, str]:
        """Read the list now (EtcdError when etcd does not answer)."""
        known = {}
        for kv in await self.etcd.get_prefix(self.base):
            try:
                entry = json.loads(kv.value)
                known[str(entry["who"])] = str(entry["address"])
            except (ValueError, KeyError, TypeError):
                log.warning("etcd: %s is not a member's entry; ignored", kv.key.decode("utf-8", "replace"))
        self.known = known
        return known

    async def join(self) -> None:
        """Put our entry (when we listen) and read the list, once (EtcdError when etcd does not answer)."""
        if self.address is not None:
            await self._keep()
        await self.refresh()

    async def run(self) -> None:
        """Forever: keep this member's entry (a new lease when the old one ended) and read the list."""
        said = None
        while True:
            try:
                await self.join()
                said = None
            except EtcdError as exc:
                if said != str(exc):
                    log.warning("pool members: etcd does not answer: %s", exc)
                    said = str(exc)
            await asyncio.sleep(self.ttl / 3)   # the renewal period of our entry's lease

    async def _keep(self) -> None:
        if self._lease is not None and await self.etcd.keepalive(self._lease) > 0:
            return
        lease, _ = await self.etcd.grant(self.ttl)
        value = json.dumps({"who": self.me, "address": self.address}).encode()
        await self.etcd.txn([], [put(self.base + self.me.encode(), value, lease)])
        self._lease = lease
        log.info("pool members: %s listens on %s", self.me, self.address)

    async def leave(self) -> None:
        """Remove our entry at once (a clean stop)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                await self.etcd.revoke(lease)
            except EtcdError as exc:
                log.info("pool members: could not remove our entry (its lease ends by itself): %s", exc)
