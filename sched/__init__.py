"""psched: the sched language, its interpreter, the task scheduler and the shell.

The folder is sched/ but the import name is psched, because the standard library already has
a module called `sched`. Three layers, imported one way (shell -> scheduler -> lang):

    lang/        text becomes a syntax tree and a result: the language, knowing no scheduler
                 and no terminal (its commands, lang/commands/, each see the core only)
    scheduler/   tasks become jobs that go to backends (local, pcontrol) and come back
    shell/       the `sched` program: scripts, the prompt, leaving and interrupting

Importing psched registers every command of the three: the scheduler's are declared from their
table (psched.scheduler.commandtable) and loaded at the first call of one of them, so that a
run that schedules nothing does not import the scheduler (start-up, issue 13).
"""

from .lang.errors import ParseError, SchedError, ScriptError
from .lang.interp import Interp
from .lang import commands as _language_commands  # noqa: F401  (registers the language's commands)
from .lang.declared import declare
from .lang.registry import BUILTINS
from .scheduler.commandtable import DECLARED, MODULE

declare(BUILTINS, MODULE, DECLARED)  # task, run, status, controller...: loaded when first called
from .shell import session as _session  # noqa: F401  (quit and exit)

__all__ = ["Interp", "SchedError", "ParseError", "ScriptError"]
