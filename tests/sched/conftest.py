"""Lets the tests of tests/sched import their shared fake world (sched_world.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
