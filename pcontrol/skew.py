"""SKEWED hosts: a host whose measured clock offset is past the threshold, with one alert per episode.

    watch = SkewWatch(alerter, threshold=1.0, changed=controller.host_changed)
    watch.measured(host, offset, delay)   # after every measurement: an agent's (clockprobe.py,
                                          # when it comes up) or a pull probe's (pull.py, each check-in)

The offset (the host's clock minus pcontrol's) is kept in the host's record by whoever measured
it; here only the verdict: `agent.skewed` holds the reason ("clock offset +2.500 s (over 1 s)")
while the offset is past the threshold, `hosts` and `check host` show it, the first measurement
past it sends an alert, and the first one back within it a recovery notice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .alerts import Alerter
from .model import Host

__all__ = ["SkewWatch", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 1.0


class SkewWatch:
    def __init__(self, alerter: Alerter, threshold: float = DEFAULT_THRESHOLD,
                 changed: Callable[[Host], None] | None = None) -> None:
        self.alerter = alerter
        self.threshold = threshold
        self.changed = changed

    def measured(self, host: Host, offset: float, delay: float) -> None:
        if abs(offset) > self.threshold:
            reason = f"clock offset {offset:+.3f} s (over {self.threshold:g} s)"
            flipped = host.agent.get("skewed") is None
            host.agent["skewed"] = reason
            if flipped:
                self._changed(host)
            self.alerter.raise_(host.name, "skew", f"pcontrol: host {host.name} is SKEWED",
                                f"Host {host.name}: {reason}, measured at "
                                f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')} (round trip {delay * 1e3:.1f} ms).")
        elif host.agent.pop("skewed", None) is not None:
            self._changed(host)
            self.alerter.clear(host.name, "skew", f"pcontrol: host {host.name} clock is back in line",
                               f"Host {host.name}: clock offset {offset:+.3f} s.")

    def _changed(self, host: Host) -> None:
        if self.changed is not None:
            self.changed(host)
