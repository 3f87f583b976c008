"""How the shell tests start the `sched` program: the console script of the venv, else the module."""

import sys
from pathlib import Path

VENV_SCHED = Path(sys.executable).with_name("sched")
SCHED_COMMAND = [str(VENV_SCHED)] if VENV_SCHED.exists() else [sys.executable, "-m", "psched.shell.cli"]
