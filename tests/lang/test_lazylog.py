"""psched.lang.lazylog: logging loads at the first message, configured by the hooks, once."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import sys
from psched.lang import lazylog
calls = []
lazylog.when_loaded(lambda: calls.append("configured"))
log = lazylog.lazy_logger("psched.test")
assert "logging" not in sys.modules, "imported before the first message"
import logging
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(filename)s %(message)s")
log.debug("not shown")
log.warning("shown %s", 1)
lazylog.load()
lazylog.when_loaded(lambda: calls.append("late"))
print(calls)
'''


def test_the_first_message_loads_logging_and_runs_the_hooks_once() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['configured', 'late']"
    # the record names the caller's file, not lazylog's (stacklevel)
    assert run.stderr.strip() == "WARNING psched.test <string> shown 1"
