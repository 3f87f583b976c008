"""Test helper job (run by path, not collected): leaves processes behind, then sleeps.

Forks a child that stays in the job's process group and a daemon (double
fork + setsid, stdio on /dev/null) that leaves the group; both ignore
SIGTERM so that only SIGKILL ends them.  Prints "child=<pid> daemon=<pid>"
once both exist (also to the FIFO named by the first argument, if any, so a
test can wait for it), then sleeps until killed.
"""

import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by both forks

child = os.fork()
if child == 0:
    time.sleep(120)
    os._exit(0)

ready_r, ready_w = os.pipe()
first = os.fork()
if first == 0:
    os.setsid()
    daemon = os.fork()
    if daemon == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.write(ready_w, f"{os.getpid()}\n".encode())
        time.sleep(120)
        os._exit(0)
    os._exit(0)
os.close(ready_w)
os.waitpid(first, 0)
daemon_pid = int(os.read(ready_r, 64))
report = f"child={child} daemon={daemon_pid}\n"
print(report, end="", flush=True)
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as fifo:
        fifo.write(report)
time.sleep(120)
