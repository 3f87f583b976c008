"""What a server of a pool (sched --serve --ha) tells its prompts about the pool, and who leads
where: the seam between the server (psched.shell.server), its relay (psched.shell.harelay) and
the election (psched.shell.ha.HAServer, psched.scheduler.hamembers).

    view = PoolView(ha, members)
    view.hello_fields(standby=True)       # member, standby, leader, pool: for each prompt's hello
    lead, address, why = await view.leader()   # asked of etcd now
"""

from __future__ import annotations

from typing import Any

from ..scheduler.etcd import EtcdError
from ..scheduler.hamembers import Members

__all__ = ["PoolView"]


class PoolView:
    """One member's view of its pool (see the module docstring)."""

    def __init__(self, ha: Any, members: Members):
        self.ha = ha                 # psched.shell.ha.HAServer
        self.members = members
        self.me: str = members.me

    def _standing_by(self) -> str:
        return f"this server stands by in its pool ({self.ha.elector.prefix})"

    def _described(self, lead: Any) -> str:
        address = self.members.address_of(lead.who)
        return lead.describe() + (f" at {address}" if address else "")

    def hello_fields(self, standby: bool) -> dict[str, Any]:
        """The pool's part of a prompt's hello, from what is known here (no waiting on etcd)."""
        elector = self.ha.elector
        lead = elector.seen if standby else (elector.leadership or elector.seen)
        return {"member": self.me, "standby": standby, "leader": self._described(lead) if lead else "",
                "pool": self.members.addresses()}

    async def leader(self) -> tuple[Any, str | None, str]:
        """(who leads or None, where it listens or None, what a prompt is told when either is None)."""
        try:
            lead = await self.ha.elector.who_leads()
            if lead is not None and self.members.address_of(lead.who) is None:
                await self.members.refresh()    # a leader new since the list was last read
        except EtcdError as err:
            return None, None, f"{self._standing_by()}, and etcd does not answer it: {err}"
        if lead is None:
            return None, None, (f"{self._standing_by()}; no member leads it at the moment (a failover takes up to "
                                f"the lease, {self.ha.elector.ttl} s): try again")
        address = self.members.address_of(lead.who)
        if address is None:
            return lead, None, (f"{self._standing_by()}; {lead.describe()}: it listens on no TCP port "
                                f"(sched --serve --listen) for this standby to reach, so attach on that machine")
        return lead, address, ""
