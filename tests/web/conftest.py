"""Fixtures of the status page's tests: the helpers beside this file on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

# The helper modules beside this file import whatever pytest's import mode.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
