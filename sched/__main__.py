"""`python -m psched`: the `sched` command (psched.shell.cli)."""

import sys

from psched.shell.cli import main

sys.exit(main())
