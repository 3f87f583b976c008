"""An interpreter that presses Ctrl-C at its n-th command, for the tests of interruption
(loops that must stop, `catch` that must not catch it, compiled forms that must still ask)."""

from __future__ import annotations

import io

from psched.lang.interp import Interp


class PressCtrlC(Interp):
    """Presses Ctrl-C when the n-th command asks whether it was pressed (every command asks
    before it runs)."""

    def __init__(self, after: int):
        self.left = after
        super().__init__(stdout=io.StringIO())

    @property
    def interrupted(self) -> bool:
        self.left -= 1
        if self.left == 0:
            self.interrupt()
        return self._interrupted

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        self._interrupted = value
