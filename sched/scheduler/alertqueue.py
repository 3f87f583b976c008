"""Controller alerts for scripts: a line in the `alerts` queue per alert event (issue 16).

    queue_alert(interp, record)     # the link (remote.py) was sent an `alert` event

pcontrol tells its subscribers when an alert episode about a host starts or ends (a pull probe
that missed its run times, a host whose clock is SKEWED, and their recovery:
pcontrol.alerts.AlertNotice); the link subscribes to them (`subscribe -only ...,alert`). A
script that wants them makes the queue first (`queueinit alerts`); each event then adds one
line, a Tcl list

    STATE HOST CONDITION SUBJECT BODY     e.g.  alert probe17 skew {pcontrol: host ...} {...}

(STATE alert or recovery; CONDITION missed or skew), which a task takes with `queuepop` in its
task.exec like any queued work. Without the queue an alert is only logged: nothing piles up
for a script that never reads it. The one-off alerts scripts send (`alert SUBJECT BODY`) are
not sent back.
"""

from __future__ import annotations

import logging
from typing import Any

from ..lang.commands.queues import get_queue
from ..lang.tcllist import join_list

log = logging.getLogger(__name__)

__all__ = ["ALERT_QUEUE", "alert_line", "queue_alert"]

ALERT_QUEUE = "alerts"


def alert_line(record: dict[str, Any]) -> str:
    return join_list([str(record.get(k) or "") for k in ("state", "host", "condition", "subject", "body")])


def queue_alert(interp: Any, record: dict[str, Any]) -> bool:
    """Add the alert's line to the `alerts` queue when the script has one (True when it did)."""
    log.info("controller %s: %s", record.get("state"), record.get("subject"))
    if ALERT_QUEUE not in interp.queues:
        return False
    get_queue(interp, ALERT_QUEUE).push(alert_line(record))
    return True
