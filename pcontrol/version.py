"""The installed version of the project, for `--version` (sched's and pcontrol's), looked up
only when asked: importlib.metadata costs ~10 ms, too much for every start-up."""

from __future__ import annotations


def package_version() -> str:
    """The version the distribution `psched` (sched, pcontrol, pclient) is installed as, or
    "unknown" when it runs from a tree that was not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("psched")
    except PackageNotFoundError:
        return "unknown"
