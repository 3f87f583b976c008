"""psched: the sched language, its interpreter, the task scheduler and the shell.

The folder is sched/ but the import name is psched, because the standard library already has
a module called `sched`.
"""

from .errors import ParseError, SchedError, ScriptError
from .interp import Interp
from . import cmd_core  # noqa: F401  (registers the core commands)
from . import cmd_lists  # noqa: F401
from . import cmd_strings  # noqa: F401
from . import cmd_clock  # noqa: F401
from . import cmd_exec  # noqa: F401
from . import cmd_queues  # noqa: F401
from . import cmd_info  # noqa: F401
from . import tasks  # noqa: F401  (the task block and its directives)
from . import cmd_sched  # noqa: F401  (run, stop, status, jobs, check, kill, wait...)
from . import cmd_controller  # noqa: F401  (controller ...)
from . import session  # noqa: F401  (quit and exit)

__all__ = ["Interp", "SchedError", "ParseError", "ScriptError"]
