"""What a server of a pool (sched --serve --ha) tells its prompts about the pool, and who leads
where: the seam between the server (psched.shell.server), its relay (psched.shell.harelay) and
the election (psched.shell.ha.HAServer, psched.scheduler.hamembers).

    view, relay = join_pool(ha, interp, tcp_addresses, secret, serve_later)   # as it starts to stand by
    view.hello_fields(standby=True)       # member, standby, leader, pool: for each prompt's hello
    lead, address, why = await view.leader()   # asked of etcd now
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any, Callable

from pcontrol.address import format_address
from pcontrol.secret import SecretError, read_secret, secret_path

from ..scheduler.etcd import EtcdError
from ..scheduler.eventloop import run_until
from ..scheduler.hamembers import Members
from .harelay import LeaderRelay

log = logging.getLogger(__name__)

__all__ = ["PoolView", "join_pool", "pool_secret"]


def join_pool(ha: Any, interp: Any, tcp_addresses: list[tuple[str, int]], secret: Callable[[], bytes | None],
              serve_later: Callable[[Any, Any], None]) -> tuple["PoolView", LeaderRelay]:
    """A server of a pool that starts to stand by: list it among the members (where it listens;
    before it may lead, so that a standby finds the leader's port at once), keep that entry until
    it stops (an exit hook gives it up), and make the relay of its prompts."""
    elector = ha.elector
    members = Members(elector.etcd, elector.prefix, elector.me, _pool_address(tcp_addresses), elector.ttl)
    try:
        run_until(members.join(), "joining the pool", interruptible=False)
    except EtcdError as err:
        log.warning("pool members: etcd does not answer yet (%s): listed once it does", err)
    keeping = asyncio.ensure_future(members.run())

    def leave(_: Any) -> None:
        keeping.cancel()
        run_until(members.leave(), "leaving the pool", interruptible=False, leavable=False)
    interp.exit_hooks.append(leave)
    view = PoolView(ha, members)
    return view, LeaderRelay(view, secret, serve_later)


def _pool_address(addresses: list[tuple[str, int]]) -> str | None:
    """Where the other members and prompts reach this one: its TCP listener (a wildcard address
    named by the host's name); None without one."""
    if not addresses:
        return None
    host, port = addresses[0]
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return format_address(host, port)


def pool_secret(home: Path) -> bytes | None:
    """The pool's secret in $SCHED_HOME, for a standby without --listen to reach the leader (None:
    it has none, or not one it may use)."""
    try:
        return read_secret(secret_path(home))
    except (OSError, SecretError):
        return None


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

    def leader_text(self) -> str:
        """Who leads (this server, once it does), from what is known here."""
        elector = self.ha.elector
        lead = elector.leadership or elector.seen
        return self._described(lead) if lead else ""

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
