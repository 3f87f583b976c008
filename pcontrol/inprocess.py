"""A connection to a Controller in the same process, with a ControllerClient's face.

    address = InProcessAddress(controller)           # what ControllerLink.address is
    client = await address.connect(on_event=...)     # request / call / subscribe / close ...
    address.cut("simulated outage")                  # every connection breaks; connects fail
    address.restore()                                # they work again

`sched --simulate` hands this address to sched's real ControllerLink, so the link, the
controller's verb table (answer.py, as the socket server runs it) and the Controller meet
exactly as they do over the socket, without one. Requests are words, as on the wire; replies
and events are handed over as the server would encode them, without the encoding: their
data are records built afresh for each message (Job.to_record, Host.to_record), plain JSON
types that no one else holds (a round trip through JSON cost a quarter of a simulation's
time). Events and replies arrive on a later loop turn, as read from a socket.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .answer import answer, answer_batch
from .client import Calls, batch_replies, batch_request
from .controller import Controller
from .errors import ControllerDisconnected, ControllerNotRunning
from .wire import Event, Interest, Reply

log = logging.getLogger(__name__)

__all__ = ["InProcessAddress", "InProcessClient"]


class InProcessClient(Calls):
    """One connection: the client's calls (as pcontrol.client.ControllerClient's), and the
    controller's Subscriber of its events."""

    def __init__(self, controller: Controller, on_event: Callable[[Event], None] | None):
        self.controller = controller
        self.owner: str | None = None
        self.interests: frozenset[Interest] | None = None
        self.brief = False
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._closed = asyncio.Event()
        self._close_reason: str | None = None

    # -- controller.Subscriber (its server side's Session is _Served) -------------------------

    def request_shutdown(self) -> None:
        log.info("an in-process connection asked for shutdown: ignored")

    def send_event(self, event: Event) -> None:
        if self.closed or self._on_event is None:
            return
        asyncio.get_running_loop().call_soon(self._deliver, event)

    def _deliver(self, event: Event) -> None:
        if self.closed or self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:   # a callback bug must not stop the controller
            log.exception("event callback failed")

    # -- the client's face --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def request(self, argv: Sequence[str], *, timeout: float | None = None) -> Reply:
        if self.closed:
            raise ControllerDisconnected(self._close_reason or "connection closed")
        await asyncio.sleep(0)      # read by the server on a later turn
        reply = await answer(_Served(self), next(self._ids), tuple(str(a) for a in argv))
        return self._received(reply)

    async def request_batch(self, commands: Sequence[Sequence[str]], *,
                            timeout: float | None = None) -> list[Reply] | None:
        if self.closed:
            raise ControllerDisconnected(self._close_reason or "connection closed")
        request = batch_request(next(self._ids), commands)
        await asyncio.sleep(0)
        return batch_replies(request, self._received(await answer_batch(_Served(self), request)))

    def _received(self, reply: Reply) -> Reply:
        if self.closed:
            raise ControllerDisconnected(self._close_reason or "connection closed")
        return reply

    async def subscribe(self, owner: str | None = None, only: Iterable[Interest] | None = None,
                        brief: bool = False) -> Any:
        argv = ["subscribe"] + (["-owner", owner] if owner is not None else [])
        if only is not None:
            argv += ["-only", ",".join(sorted(i.value for i in only))]
        return await self.call(*argv, *(["-brief"] if brief else []))

    async def close(self) -> None:
        self.cut("connection closed by the client")

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return self._close_reason or "closed"

    def cut(self, reason: str) -> None:
        """The connection ends (either side)."""
        if self.closed:
            return
        self._close_reason = reason
        self._closed.set()
        self.controller.unsubscribe(self)


class _Served:
    """The server side's Session of an InProcessClient (what verbs' handlers are given)."""

    def __init__(self, client: InProcessClient):
        self._client = client
        self.controller = client.controller

    def subscribe(self, owner: str | None, interests: frozenset[Interest] | None = None,
                  brief: bool = False) -> None:
        self._client.owner = owner
        self._client.interests = interests
        self._client.brief = brief
        self.controller.subscribe(self._client)

    def unsubscribe(self) -> None:
        self.controller.unsubscribe(self._client)

    def request_shutdown(self) -> None:
        self._client.request_shutdown()


class InProcessAddress:
    """Where ControllerLink finds the in-process controller (pcontrol.client.ControllerAddress's
    face): never TCP, so the link starts no daemon and adds no localhost of its own."""

    is_tcp = False

    def __init__(self, controller: Controller, home: Path):
        self.controller = controller
        self.home = home
        self.clients: list[InProcessClient] = []
        self._cut: str | None = None

    def __str__(self) -> str:
        return "the simulated controller"

    async def connect(self, *, on_event: Callable[[Event], None] | None = None,
                      timeout: float = 5.0) -> InProcessClient:
        await asyncio.sleep(0)
        if self._cut is not None:
            raise ControllerNotRunning(f"pcontrol is unreachable ({self._cut})")
        client = InProcessClient(self.controller, on_event)
        self.clients = [c for c in self.clients if not c.closed] + [client]
        return client

    def cut(self, reason: str) -> None:
        """The controller becomes unreachable: connections break, new ones are refused."""
        self._cut = reason
        for client in self.clients:
            client.cut(f"connection to pcontrol lost: {reason}")
        self.clients = []

    def restore(self) -> None:
        self._cut = None
