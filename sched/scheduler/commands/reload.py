"""`reload`: read a server's files again and apply what changed, without a burst of jobs.

psched.scheduler.reload says how. The server also reloads on SIGHUP and when the flag file
$SCHED_HOME/reload appears (psched.shell.server)."""

from __future__ import annotations

from typing import Any

from ...lang.errors import SchedError, TaskError
from ...lang.registry import BUILTINS
from ..reload import NO_FILES, RELOAD_KEY, load_files, reload_error


@BUILTINS.command("reload", "read the server's files again: new tasks start (spread over their first period), "
                            "removed ones stop making jobs, changed ones keep their counters, jobs and schedule; "
                            "a file with an error changes nothing; $argv0, $argv and $argc are first set again "
                            "to the values the server started with")
def cmd_reload(interp: Any, argv: list[str]) -> str:
    if interp.extensions.get(RELOAD_KEY) is None:
        raise TaskError(f"reload: {NO_FILES}")
    try:
        return "reload: " + load_files(interp).summary()
    except SchedError as err:
        raise reload_error(err) from None
