"""A trouble that comes again and again (a full disk fails job after job) said seldom.

    said = Seldom(600.0)
    told = said.due(key, now)     # None: said less than 600 s ago (this time is counted)
    if told is not None:
        before, since = told      # said before?  how many times it came since it was said

Used by the agent (spooled outputs it cannot keep) and by sched (a host that kept only the
head of a task's output). Standard library only (pclient).
"""

from __future__ import annotations

from typing import Dict, Hashable, Tuple, Union

__all__ = ["Seldom"]


class Seldom:
    """When each kind of trouble (`key`) was last said, and how often it came since."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._said: Dict[Hashable, Tuple[float, int]] = {}

    def due(self, key: Hashable, now: float) -> Union[Tuple[bool, int], None]:
        """Whether to say it now (`now` on a monotonic clock): None when it was said less than
        `every` seconds ago (this time is counted), else (whether it was said before, the times
        it came in between)."""
        said = self._said.get(key)
        if said is not None and now - said[0] < self.every:
            self._said[key] = (said[0], said[1] + 1)
            return None
        self._said[key] = (now, 0)
        return (said is not None, said[1] if said is not None else 0)
