"""Measuring an agent's clock offset NTP-style over its existing link.

    offset = await probes.measure(host)    # a few `clock` probes, one at a time; the best
                                           # (shortest round trip) gives the offset
    probes.reply(host, message)            # the HostListener hands every `clock_reply` here

The arithmetic is pclient.clockmath's. The result is kept in the host's record
(`agent.clock_offset`, `agent.clock_delay`, `agent.clock_measured`, in seconds and
wall-clock time), which `hosts` and `check host` show, and which a sync run uses to tell
each agent its start instant by its own clock. Measured once when a host comes up and again
before every sync run. The reply's arrival time (t3) is taken when its line is handed to
us, synchronously from the link's reader, so the loop's other work does not count in it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from pclient import protocol as agent_protocol
from pclient.clockmath import ClockSample, best_sample, sample

from .model import Host

log = logging.getLogger(__name__)

__all__ = ["ClockProbes", "PROBES", "PROBE_TIMEOUT"]

PROBES = 8
"""Probes per measurement (the best of them counts)."""
PROBE_TIMEOUT = 2.0
"""Seconds to wait for one probe's reply before the agent counts as not answering."""

Send = Callable[[Host, agent_protocol.Message], bool]


class ClockProbes:
    """The probes in flight, by sequence number, and the measurement loop."""

    def __init__(self, send: Send, clock: Callable[[], float] = time.time):
        self._send = send
        self._clock = clock
        self._seq = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[agent_protocol.ClockReply, float]]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.on_measured: list[Callable[[Host, ClockSample], None]] = []
        """Told of every measurement (skew.SkewWatch: SKEWED hosts)."""
        self._one_at_a_time = asyncio.Lock()
        """Measurements take turns: twenty agents answering at once would queue their
        replies behind each other (and behind their wake-ups), and every queued reply
        is error in its offset. One host after another, a probe costs a round trip."""

    def measure_soon(self, host: Host) -> None:
        """Measure in the background (a host that has just come up)."""
        task = asyncio.get_running_loop().create_task(self.measure(host), name=f"clock {host.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def measure(self, host: Host, *, probes: int = PROBES,
                      timeout: float = PROBE_TIMEOUT) -> ClockSample | None:
        """Probe `host`'s agent; its offset (None: it did not answer a single probe)."""
        async with self._one_at_a_time:
            return await self._measure(host, probes, timeout)

    async def _measure(self, host: Host, probes: int, timeout: float) -> ClockSample | None:
        loop = asyncio.get_running_loop()
        samples: list[ClockSample] = []
        for _ in range(probes):
            seq = next(self._seq)
            waiter = loop.create_future()
            self._waiting[seq] = waiter
            try:
                t0 = self._clock()
                if not self._send(host, agent_protocol.ClockProbe(seq=seq, sent=t0)):
                    break
                reply, t3 = await asyncio.wait_for(waiter, timeout)
            except asyncio.TimeoutError:
                log.warning("%s: no answer to a clock probe within %g s", host.name, timeout)
                break
            finally:
                self._waiting.pop(seq, None)
            samples.append(sample(reply.sent, reply.received, reply.replied, t3))
        best = best_sample(samples)
        if best is not None:
            host.agent["clock_offset"] = round(best.offset, 6)
            host.agent["clock_delay"] = round(best.delay, 6)
            host.agent["clock_measured"] = self._clock()
            log.info("%s: clock offset %+.3f ms (round trip %.3f ms, best of %d)", host.name,
                     best.offset * 1e3, best.delay * 1e3, len(samples))
            for listener in self.on_measured:
                listener(host, best)
        return best

    def reply(self, host: Host, message: agent_protocol.ClockReply) -> None:
        t3 = self._clock()
        waiter = self._waiting.get(message.seq)
        if waiter is None or waiter.done():
            log.debug("%s: a late or unknown clock reply (seq %d)", host.name, message.seq)
            return
        waiter.set_result((message, t3))
