"""The language's commands, one module per family (core, lists, strings, info, clock, exec, queues,
tclcontrol, dicts, scan, files).

Each registers its commands in psched.lang.registry.BUILTINS when imported, and imports the core
of the language only, never another command module (tests/test_layers.py checks it).
"""

# each registers its commands; in this order, as before the split
from . import core, lists, strings, clock, exec, queues, info, tclcontrol, dicts, scan, files  # noqa: F401,I001
