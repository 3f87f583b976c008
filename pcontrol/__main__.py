"""`python -m pcontrol`: the same as the `pcontrol` command."""

import sys

from .cli import main

sys.exit(main())
