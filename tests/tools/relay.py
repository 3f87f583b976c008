"""A stand-in for ssh (or for one hop of it) in the tests: `python relay.py [--no-stderr] CMD...`
runs CMD as a child in a session of its own, on pipes, and copies bytes both ways.

Killing the relay cuts the connection while CMD (an agent) lives on and sees end of input,
as killing ssh does to a remote pclient. Two relays in a row stand for ssh and the network:
stopping the second (SIGSTOP) stalls the connection as a cut network does: nothing passes,
and the agent is not told. --no-stderr sends CMD's stderr to /dev/null (else it is the
relay's own). Standard library only; never imported by the tests, only run.
"""

import os
import select
import subprocess
import sys

args = sys.argv[1:]
quiet = bool(args) and args[0] == "--no-stderr"
child = subprocess.Popen(args[1:] if quiet else args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL if quiet else None, start_new_session=True)
routes = {0: child.stdin.fileno(), child.stdout.fileno(): 1}
while routes:
    ready, _, _ = select.select(list(routes), [], [])
    for fd in ready:
        data = os.read(fd, 65536)
        if not data:
            target = routes.pop(fd)
            if target != 1:
                os.close(target)
            else:
                sys.exit(child.wait())
            continue
        try:
            os.write(routes[fd], data)
        except BrokenPipeError:
            sys.exit(1)
