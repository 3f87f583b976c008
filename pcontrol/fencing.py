"""The fencing token pcontrol hands its agents, when its scheduler leads a high-availability pool.

`sched --serve --ha` puts its leader's token (psched.scheduler.ha: the revision that made its
leader key in etcd) in $PCONTROL_FENCE once it leads, so the pcontrol it starts inherits it;
pcontrol gives it to every agent in `auth` (pclient.fencing). An agent refuses a controller
whose token is lower than the highest it has accepted on that host (a new leader's controller
has taken the host over): the requests of a deposed leader's pcontrol are refused there, and its
refusals are in that pcontrol's log and the host's history.

    fence = fence_from_env()      # None: not in a pool (agents are not fenced)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

__all__ = ["FENCE_ENV", "fence_from_env"]

FENCE_ENV = "PCONTROL_FENCE"


def fence_from_env(environ: Mapping[str, str] = os.environ) -> int | None:
    text = environ.get(FENCE_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit():
        log.warning("$%s=%r is not a fencing token (a whole number); agents are not fenced", FENCE_ENV, text)
        return None
    return int(text)
