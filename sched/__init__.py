"""psched: the sched language, its interpreter, the task scheduler and the shell.

The folder is sched/ but the import name is psched, because the standard library already has
a module called `sched`.
"""

from .errors import ParseError, SchedError, ScriptError
from .interp import Interp
from . import cmd_core  # noqa: F401  (registers the core commands)
from . import tasks  # noqa: F401  (the task block and its directives)
from . import cmd_sched  # noqa: F401  (run, stop, status, jobs, check, kill, wait...)

__all__ = ["Interp", "SchedError", "ParseError", "ScriptError"]
