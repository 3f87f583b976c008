"""Loggers that load `logging` at their first message, not at import (start-up, issue 13).

`import logging` costs about 35M instructions (threading, traceback, string, weakref: a sixth
of a whole `sched -c 'echo hi'`), and a run of the language alone never logs. A module on that
path writes `log = lazy_logger(__name__)`; the first message of any such logger, or the first
`load()` (the scheduler's first loop or Scheduler: from then on asyncio and the backends log
with plain `logging`), imports logging, runs once the hooks given to `when_loaded` (the shell's
handler and format), and from then on every call goes straight to `logging.getLogger(name)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_hooks: list[Callable[[], None]] = []
_loaded = False


def when_loaded(hook: Callable[[], None]) -> None:
    """Run `hook` (which configures logging) once logging is in use; at once if it already is."""
    if _loaded:
        hook()
    else:
        _hooks.append(hook)


def load() -> None:
    """Bring logging in now, configured: anything that logs with plain `logging` may follow."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import logging  # noqa: F401  (the point of this module: here, and only once needed)

    while _hooks:
        _hooks.pop(0)()


class LazyLogger:
    """`logging.getLogger(name)`, got at the first message (the methods this project uses)."""

    __slots__ = ("name", "_logger")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: Any = None

    def _real(self) -> Any:
        if self._logger is None:
            load()
            import logging

            self._logger = logging.getLogger(self.name)
        return self._logger

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._real().debug(msg, *args, stacklevel=2, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._real().info(msg, *args, stacklevel=2, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._real().warning(msg, *args, stacklevel=2, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._real().error(msg, *args, stacklevel=2, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._real().exception(msg, *args, stacklevel=2, **kwargs)


def lazy_logger(name: str) -> LazyLogger:
    """The logger of module `name`, loading logging at its first message."""
    return LazyLogger(name)
