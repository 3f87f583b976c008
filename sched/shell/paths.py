"""Where sched keeps its state: the directory `$SCHED_HOME`, by default `~/.sched`.

    sched_home() -> Path        the directory, created mode 0700 when missing
    history_path() -> Path      the shell's command history

The home is resolved by pcontrol.paths.default_home, so sched and pcontrol always mean the same
directory. Later parts keep their own files here too (the embedded controller's socket and data, the
scheduler's identity). The directory is private to its user: it may hold job output and a
control socket, so it is created 0700 whatever the umask says.
"""

from __future__ import annotations

import os
from pathlib import Path

from pcontrol.paths import HOME_VAR, default_home

__all__ = ["ENV_VAR", "sched_home", "history_path"]

ENV_VAR = HOME_VAR
"""The environment variable that overrides the state directory."""

_MODE = 0o700


def sched_home(create: bool = True) -> Path:
    """The state directory ($SCHED_HOME, else ~/.sched), created 0700 if missing.

    Raises OSError when it cannot be created (the caller decides whether that matters).
    """
    home = default_home()  # the resolver pcontrol uses too: one home, whoever asks
    if create and not home.is_dir():
        home.mkdir(mode=_MODE, parents=True, exist_ok=True)
        os.chmod(home, _MODE)  # mkdir's mode is filtered by the umask; make it exactly 0700
    return home


def history_path(create: bool = True) -> Path:
    """The file that keeps the interactive shell's history across sessions."""
    return sched_home(create) / "history"
