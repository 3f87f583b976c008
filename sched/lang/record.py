"""Small value classes written out, for the classes every `sched` run makes at start-up.

    class Pos(Frozen):
        __slots__ = _fields = ("file", "line", "column")
        def __init__(self, file, line, column): ...

A dataclass costs its module a compilation of each generated method at every start (about 2 ms
a class on this machine, a third of `sched -c`'s own work before this; issue 13). A class
below writes its `__init__` by hand and inherits the rest, which behaves as the dataclass's did:
`repr` is `Name(field=value, ...)`; instances of the same class are equal when their fields are;
a Record is unhashable, a Frozen one hashes its fields and refuses assignment. `_fields` names
the fields in order. Classes made later in a run (the scheduler's, the controller's) stay
dataclasses.
"""

from __future__ import annotations

__all__ = ["Record", "Frozen"]


class Record:
    """Fields in `_fields` (a class attribute): repr and equality over them, no hash."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()  # type: ignore[attr-defined]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  (mutable: as a dataclass with eq and not frozen)

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)


class Frozen(Record):
    """A Record whose fields are set once, in `__init__` (with `object.__setattr__`), and hashed."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._values())
