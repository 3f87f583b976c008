"""`python -m pcontrol`: the same as the `pcontrol` command.

`serve --spare-local-agent SLOTS` (the sched shell's embedded default) starts that local agent
here, before the daemon's imports, so that the two start side by side (pcontrol.spareagent).
`serve ... --go-fd FD` (a sched reading a script that will need pcontrol) then does the
daemon's imports and waits until sched says go; it exits if sched lets go (pcontrol.warmstart).
"""

import os
import sys

if os.getpid() == 1:  # a container's first process: a minimal init first (pclient.pidone)
    from pclient.pidone import become_init_if_pid1

    become_init_if_pid1()

from .spareagent import spare_from_argv  # noqa: E402  (in the init's child)

SPARE = spare_from_argv(sys.argv[1:])

from .warmstart import go_fd_from_argv  # noqa: E402  (after the spare agent has started)

GO_FD = go_fd_from_argv(sys.argv)

from .cli import main  # noqa: E402  (after the spare agent has started)

if GO_FD is not None:
    from . import controller, daemon  # noqa: F401,E402  (what `serve` loads, before the wait)
    from .warmstart import log_from_argv, wait_for_go

    if not wait_for_go(GO_FD, log_from_argv(sys.argv)):
        if SPARE is not None:
            SPARE.discard()  # it sees EOF on its input pipe and exits
        sys.exit(0)

sys.exit(main(spare=SPARE))
