"""`python -m pcontrol`: the same as the `pcontrol` command.

`serve --spare-local-agent SLOTS` (the sched shell's embedded default) starts that local agent
here, before the daemon's imports, so that the two start side by side (pcontrol.spareagent).
"""

import sys

from .spareagent import spare_from_argv

SPARE = spare_from_argv(sys.argv[1:])

from .cli import main  # noqa: E402  (after the spare agent has started)

sys.exit(main(spare=SPARE))
