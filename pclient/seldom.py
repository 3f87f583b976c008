"""A trouble that comes again and again (a full disk fails job after job) said seldom.

    said = Seldom(600.0)
    told = said.due(key, now)     # None: said less than 600 s ago (this time is counted)
    if told is not None:
        before, since = told      # said before?  how many times it came since it was said
    said.due(key, now, text)      # the same, but a different text from the last said is said at once
    said.forget(key)              # the trouble is over: the next one is said at once

Used by the agent (spooled outputs it cannot keep) and by sched (a host that kept only the
head of a task's output; a macro that fails the same way at every look or job). Standard
library only (pclient).
"""

from __future__ import annotations

from typing import Dict, Hashable, Tuple, Union

__all__ = ["Seldom"]


class Seldom:
    """When each kind of trouble (`key`) was last said, and how often it came since."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._said: Dict[Hashable, Tuple[float, int, object]] = {}

    def due(self, key: Hashable, now: float, text: object = None) -> Union[Tuple[bool, int], None]:
        """Whether to say it now (`now` on a monotonic clock): None when it was said less than
        `every` seconds ago with the same `text` (this time is counted), else (whether it was
        said before with that text, the times it came in between)."""
        said = self._said.get(key)
        same = said is not None and said[2] == text
        if same and now - said[0] < self.every:  # type: ignore[index]
            self._said[key] = (said[0], said[1] + 1, text)  # type: ignore[index]
            return None
        self._said[key] = (now, 0, text)
        return (same, said[1] if same else 0)  # type: ignore[index]

    def forget(self, key: Hashable) -> None:
        """The trouble of `key` is over (what is said of it next is said at once)."""
        self._said.pop(key, None)
