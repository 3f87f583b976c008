"""Run the real `pcontrol serve` with other ServerLimits (JSON, first argument).

    python limited_daemon.py '{"line_timeout": 1.0}' --home DIR serve --ready-fd N

Everything after the JSON goes to pcontrol's own command line; only the defaults the
listeners start with differ, so the tests see the daemon's whole path (pid lock, journal,
signals) with bounds small enough to reach in a fast test.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from pcontrol import cli, server


def main() -> int:
    overrides = json.loads(sys.argv[1])
    server.DEFAULT_LIMITS = dataclasses.replace(server.DEFAULT_LIMITS, **overrides)
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
