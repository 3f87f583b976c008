"""A standby of a pool carries its prompts' requests on to the leader: attach to any member.

    relay = LeaderRelay(pool, secret, serve_here)     # while the server stands by (server.standby)
    relay.attached(prompt)                            # reach the leader now: its output flows
    relay.forward(prompt, request)                    # in order, per prompt; the reply comes back
    relay.leading("b pid 42 leads since ... (token 9)")  # we lead: our prompts are served here

Why a relay and not a redirect: an operator behind a firewall may reach one machine of the pool
(a port opened to it, an ssh tunnel to it) and not the others, while the members reach each
other (they share etcd and, with --listen, a TCP port each). So the member the prompt reaches
opens the connection to the leader itself, proving the pool's secret (every member holds the
same $SCHED_HOME/secret), and passes requests, replies and the leader's output on.

Each prompt has its own connection to the leader (psched.shell.serverlink.ServerLink) and its
requests go one after the other. Before each request the relay asks etcd who leads now
(psched.scheduler.ha, .hamembers): a new leader (another token) gets a new connection, and the
prompt is told. When the leader's connection closes the prompt is told at once; its next request
goes to whoever leads then. When this server takes the lead (`leading`) its prompts are told and
their requests are served here from then on (`serve_here`).

`sched --stop` (Op.STOP) stops this member, not the leader; everything else (a typed `quit`
included) goes to the leader.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Awaitable, Callable, Protocol

from pcontrol.address import parse_host_port

from .serverlink import ServerGone, ServerLink
from .serverwire import Hello, Op, Output, Reply, Request, WireError

log = logging.getLogger(__name__)

INTERRUPT_GRACE = 2.0
"""Seconds the leader has to answer a request interrupted at a relayed prompt; then the relay
answers it and hangs up (a leader that hangs must not hold the prompt)."""

__all__ = ["LeaderRelay", "LeaderView", "PromptSink"]


class PromptSink(Protocol):
    """A prompt attached to this server, as the relay writes to it (psched.shell.server._Prompt)."""

    gone: bool

    def send(self, message: Hello | Output | Reply) -> None: ...


class LeaderView(Protocol):
    """Who leads and where it listens, asked of etcd (psched.shell.hapool.PoolView)."""

    me: str

    def leader(self) -> Awaitable[tuple[Any, str | None, str]]:
        """(the Leadership or None, its HOST:PORT or None, why there is nothing to reach: the text
        a prompt gets when the first or second is None)."""


class _Relayed:
    """One prompt's side of the relay: its connection to the leader and its queued requests."""

    def __init__(self, prompt: PromptSink):
        self.prompt = prompt
        self.link: ServerLink | None = None
        self.token: int | None = None
        self.address = ""
        self.in_flight = 0
        self.abandoned: str | None = None    # why the relay hung up on the request in flight
        self.requests: asyncio.Queue[Request | None] = asyncio.Queue()
        self.worker: asyncio.Task | None = None

    def say(self, text: str) -> None:
        self.prompt.send(Output(f"sched: {text}\n"))

    def output(self, output: Output) -> None:
        """The leader's output: a request's own goes with that request's id here."""
        self.prompt.send(Output(output.text, self.in_flight if output.id else 0))

    def abandon(self, request_id: int, reason: str) -> None:
        """Hang up on a request the leader does not answer (after a Ctrl-C)."""
        if self.in_flight == request_id and self.link is not None:
            self.abandoned = reason
            self.hang_up()

    def hang_up(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None


class LeaderRelay:
    """The relay of one standby server (see the module docstring)."""

    def __init__(self, leader: LeaderView, secret: Callable[[], bytes | None],
                 serve_here: Callable[[Any, Request], None]):
        self.view = leader
        self.secret = secret
        self.serve_here = serve_here
        self.here: str | None = None        # set once we lead: why requests are served here
        self._prompts: dict[PromptSink, _Relayed] = {}

    # -- the server's side ----------------------------------------------------------------------------

    def attached(self, prompt: PromptSink) -> None:
        """A prompt attached: reach the leader now, so that its output reaches the prompt."""
        self._queue(prompt, None)

    def forward(self, prompt: PromptSink, request: Request) -> None:
        relayed = self._prompts.get(prompt)
        if request.op is Op.INTERRUPT:
            if relayed is not None and relayed.link is not None and relayed.in_flight:
                relayed.link.interrupt()
                asyncio.get_running_loop().call_later(
                    INTERRUPT_GRACE, relayed.abandon, relayed.in_flight,
                    f"interrupted here: the leader at {relayed.address} did not answer within {INTERRUPT_GRACE:g} s")
            return
        self._queue(prompt, request)

    def drop(self, prompt: PromptSink) -> None:
        relayed = self._prompts.pop(prompt, None)
        if relayed is not None:
            relayed.hang_up()
            if relayed.worker is not None:
                relayed.worker.cancel()

    def leading(self, text: str) -> None:
        """This server leads now: its prompts are told, and served here from now on."""
        self.here = text
        for relayed in self._prompts.values():
            relayed.hang_up()
            relayed.say(f"this server leads the pool now: {text}; your commands run here")

    # -- per prompt -----------------------------------------------------------------------------------

    def _queue(self, prompt: PromptSink, request: Request | None) -> None:
        relayed = self._prompts.get(prompt)
        if relayed is None:
            relayed = self._prompts[prompt] = _Relayed(prompt)
            relayed.worker = asyncio.ensure_future(self._work(relayed))
        relayed.requests.put_nowait(request)

    async def _work(self, relayed: _Relayed) -> None:
        while not relayed.prompt.gone:
            request = await relayed.requests.get()
            if self.here is not None:
                if request is not None:
                    self.serve_here(relayed.prompt, request)
                continue
            try:
                await self._carry(relayed, request)
            except Exception:       # a relay that fails says so; the prompt and the server go on
                log.exception("relaying a request to the leader failed")
                if request is not None:
                    relayed.prompt.send(Reply(request.id, False, "this standby could not relay the request "
                                                                 "(see its log)"))

    async def _carry(self, relayed: _Relayed, request: Request | None) -> None:
        def refuse(text: str) -> None:
            if request is not None:
                relayed.prompt.send(Reply(request.id, False, text))
            else:
                relayed.say(text)

        lead, address, why = await self.view.leader()
        if lead is not None and lead.who == self.view.me:       # we have just won: served here soon
            if request is not None:
                self.serve_here(relayed.prompt, request)
            return
        if lead is None or address is None:
            relayed.hang_up()
            return refuse(why)
        if relayed.link is not None and (relayed.token != lead.token or relayed.link.gone.done()):
            relayed.hang_up()
        if relayed.link is None:
            problem = await self._connect(relayed, lead, address)
            if problem is not None:
                return refuse(problem)
        if request is None:
            return
        assert relayed.link is not None
        relayed.in_flight, relayed.abandoned = request.id, None
        try:
            reply = await relayed.link.request(request.op, request.script, request.force, request.line)
        except ServerGone as err:
            return refuse(relayed.abandoned or (
                f"the leader at {address} went away before it answered ({err}); the command may have "
                f"run there; your next command goes to whichever member leads then"))
        finally:
            relayed.in_flight = 0
        relayed.prompt.send(dataclasses.replace(reply, id=request.id))

    async def _connect(self, relayed: _Relayed, lead: Any, address: str) -> str | None:
        """Open the prompt's connection to the leader; why not, or None."""
        secret = self.secret()
        if secret is None:
            return (f"{lead.describe()} at {address}; this standby holds no secret ($SCHED_HOME/secret, the "
                    f"pool's) to reach it: attach there")
        try:
            link = await ServerLink.connect_tcp(parse_host_port(address), secret, relayed.output)
        except (OSError, asyncio.TimeoutError, ServerGone, WireError, ValueError) as err:
            return f"{lead.describe()}, but at {address} it does not answer: {getattr(err, 'strerror', None) or err}"
        relayed.link, relayed.address = link, address
        if relayed.token != lead.token:
            changed = relayed.token is not None
            relayed.token = lead.token
            relayed.say(("the leader has changed: " if changed else "this standby carries your commands to the "
                         "leader: ") + f"{lead.describe()}, at {address}")
        link.gone.add_done_callback(lambda gone: self._leader_gone(relayed, link, gone.result()))
        return None

    def _leader_gone(self, relayed: _Relayed, link: ServerLink, reason: str) -> None:
        if relayed.link is not link or self.here is not None:
            return
        relayed.link = None
        relayed.say(f"the leader at {relayed.address} has gone ({reason}); your next command goes to "
                    f"whichever member leads then")
