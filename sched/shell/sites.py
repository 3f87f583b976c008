"""`sched --sites DIR`: one script per site, each in its own namespace, loaded from a directory.

    failed = load_sites(interp, "/etc/sched/sites")   # every DIR/*.sched, in name order

Each file SITE.sched is read with its tasks named SITE.TASK (the `task` block adds the prefix
while the file runs, through taskspec.SITE_KEY), and `$site` set to SITE while it is read (macros
run later: they have `$task`), so that ten schools' files may each define a task `ndt`. A file with an error (a parse error, a misplaced
directive, a plan that cannot fit, any failing command) is reported with its file:line and
skipped: the tasks it had defined before the error are deleted again, and the other sites
load and run. Variables other than `site` are shared by all sites (one interpreter).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..lang.errors import SchedError
from ..scheduler.attach import SCHEDULER_KEY
from ..scheduler.taskspec import SITE_KEY

log = logging.getLogger(__name__)

__all__ = ["load_sites", "site_files"]


def site_files(directory: str) -> list[Path]:
    """The site scripts of a directory (`*.sched`, in name order); OSError if it cannot be read."""
    return sorted(p for p in Path(directory).iterdir() if p.suffix == ".sched" and p.is_file())


def load_sites(interp: Any, directory: str) -> list[tuple[str, str]]:
    """Run every site script; (file, rendered error) for each one skipped."""
    failed = []
    for path in site_files(directory):
        site = path.stem
        before = _task_names(interp)
        interp.extensions[SITE_KEY] = f"{site}."
        interp.globals.vars["site"] = site
        try:
            interp.eval_file(os.fspath(path))
        except SchedError as err:
            failed.append((os.fspath(path), err.render()))
            _undo(interp, before, site)
        finally:
            interp.extensions.pop(SITE_KEY, None)
            interp.globals.vars.pop("site", None)
    return failed


def _task_names(interp: Any) -> set[str]:
    sched = interp.extensions.get(SCHEDULER_KEY)
    return set(sched.tasks) if sched is not None else set()


def _undo(interp: Any, before: set[str], site: str) -> None:
    sched = interp.extensions.get(SCHEDULER_KEY)
    if sched is None:
        return
    for name in sorted(set(sched.tasks) - before):
        sched.delete_task(name)
        log.info("site %s skipped: its task %s is deleted again", site, name)
