"""The switchboard's commands: `send TASK TEXT` from any macro (or the prompt), and `messages
?TASK?`, what waits for each task's next job (psched.scheduler.switchboard).

A message sent from a task's macro (task.exec, task.exit) comes from that task; from anywhere
else it comes from `sched`. Jobs send by writing `TASK TEXT` lines to $PSCHED_OUTBOX.
"""

from __future__ import annotations

import json
from typing import Any

from ..attach import scheduler_of
from ...lang.errors import TaskError
from ...lang.registry import BUILTINS
from ...lang.tcllist import join_list
from ..loop import _known

cmd = BUILTINS.command

PROMPT_SENDER = "sched"
"""The sender of a message sent from outside every task's macro."""


def _sender(interp: Any) -> str:
    """The task whose macro runs now ($task of task.exec / task.exit), else PROMPT_SENDER."""
    if interp.var_exists("task"):
        name = interp.get_var("task")
        if name in scheduler_of(interp).tasks:
            return name
    return PROMPT_SENDER


@cmd("send task text", "leave a message for the next job of TASK: its task.exec and task.exit macros find it in "
                       "the queue `inbox`, the job in the file $PSCHED_INBOX, as a line `SENDER TEXT` "
                       "(kept across restarts; jobs send by writing `TASK TEXT` lines to $PSCHED_OUTBOX)")
def cmd_send(interp: Any, argv: list[str]) -> str:
    sched = scheduler_of(interp)
    task, text = argv[1], argv[2]
    if task not in sched.tasks:
        raise TaskError(f'send: no task "{task}"' + _known(sched.tasks))
    sched.switchboard.post(task, _sender(interp), text)
    return ""


@cmd("messages ?task? ?-json?", "the messages waiting for each task's next job (or TASK's): a line "
                                "`TASK SENDER TEXT` each, oldest first")
def cmd_messages(interp: Any, argv: list[str]) -> str:
    words = [w for w in argv[1:] if w != "-json"]
    if len(words) > 1 or any(w.startswith("-") for w in words):
        raise TaskError('wrong # args: should be "messages ?task? ?-json?"')
    waiting = scheduler_of(interp).switchboard.waiting(words[0] if words else None)
    if "-json" in argv[1:]:
        return json.dumps([{"to": m.to, "from": m.sender, "text": m.text, "sent": m.sent} for m in waiting])
    return "\n".join(join_list([m.to, m.sender, m.text]) for m in waiting)
