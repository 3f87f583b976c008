"""The scheduler's commands: the task block and its directives (tasks), the prompt's commands that
steer the scheduler (steer), `controller` (controller), Tcl's `after` on the scheduler's loop (after),
synchronized runs (sync), `reload` (reload), the switchboard's messages between jobs (messages), and job
sequences from JSON (sequence)."""

from ...lang.declared import declared_checks, undeclare
from ...lang.interp import READ_CHECKS
from ...lang.registry import BUILTINS

undeclare(BUILTINS, __name__)  # psched.scheduler.commandtable's stubs give way to the commands declared below
_FIRST_CHECK = len(READ_CHECKS)

from . import tasks  # noqa: F401  (the task block and its directives)
from . import steer  # noqa: F401  (run, stop, status, jobs, check, kill, wait...)
from . import controller  # noqa: F401  (controller ...)
from . import after  # noqa: F401  (after)
from . import sync  # noqa: F401  (sync blocks, target, syncrun)
from . import reload  # noqa: F401  (reload)
from . import messages  # noqa: F401  (send, messages)
from . import sequence  # noqa: F401  (sequence load, controller host load)

declared_checks(__name__, READ_CHECKS[_FIRST_CHECK:])  # for interpreters made before this import
