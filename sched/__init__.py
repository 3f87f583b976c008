"""psched: the sched language, its interpreter, the task scheduler and the shell.

The folder is sched/ but the import name is psched, because the standard library already has
a module called `sched`. Three layers, imported one way (shell -> scheduler -> lang):

    lang/        text becomes a syntax tree and a result: the language, knowing no scheduler
                 and no terminal (its commands, lang/commands/, each see the core only)
    scheduler/   tasks become jobs that go to backends (local, pcontrol) and come back
    shell/       the `sched` program: scripts, the prompt, leaving and interrupting

Importing psched registers every command of the three.
"""

from .lang.errors import ParseError, SchedError, ScriptError
from .lang.interp import Interp
from .lang import commands as _language_commands  # noqa: F401  (registers the language's commands)
from .scheduler import commands as _scheduler_commands  # noqa: F401  (task, run, status, controller...)
from .shell import session as _session  # noqa: F401  (quit and exit)

__all__ = ["Interp", "SchedError", "ParseError", "ScriptError"]
