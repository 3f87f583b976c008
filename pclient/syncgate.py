"""The gate a synchronized job waits at: forked, its program not started yet.

The agent (pclient.syncstart) runs each prepared job as this small program in front of the
real one, under jobproc like any job (own session, captured output, kill, /proc sweep):

    python -I -c GATE_PROGRAM SOCKET JOB PROGRAM ARG...

The gate checks that PROGRAM can be run (else it exits 127 or 126 at once, as a shell
would, and the job ends before it was ever ready), connects to the agent's Unix SOCKET and
says JOB; the agent then reports it ready. When the agent passes on the start instant (a
line with a time.time() value of this host's clock), the gate sleeps until that instant,
notes the time, tells the agent, and execs PROGRAM: the program starts in the process that
was forked long before, so the start costs an exec and no fork. End of input before an
instant means the run was called off: the gate exits 1 without starting anything.

Where it may (root, or CAP_SYS_NICE), the gate waits under SCHED_FIFO, so that twenty gates
waking on two cores do not queue behind each other's exec, and goes back to SCHED_OTHER
before its exec, so the program itself runs as it would have. Refused, that changes nothing.

The gate is a program text, not an import of pclient: an agent that pcontrol sent over ssh
runs from a bundle held in its own memory (pcontrol.bootstrap), which a new process cannot
import from. The text uses the standard library only.
"""

from __future__ import annotations

__all__ = ["GATE_PROGRAM"]

GATE_PROGRAM = r'''
import errno, os, shutil, socket, sys, time

def fail(status, text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
    os._exit(status)

def resolve(program):
    if os.sep in program:
        if not os.path.exists(program):
            fail(127, "cannot start %r: no such program" % program)
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            fail(126, "cannot start %r: not executable" % program)
        return program
    found = shutil.which(program)
    if found is None:
        fail(127, "cannot start %r: no such program" % program)
    return found

def realtime(on):
    try:
        if on:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass

def wait_until(instant):
    while True:
        left = instant - time.time()
        if left <= 0:
            return
        time.sleep(left)

if len(sys.argv) < 4:
    fail(2, "sync gate: usage: SOCKET JOB PROGRAM ARG...")
path, job, command = sys.argv[1], sys.argv[2], sys.argv[3:]
program = resolve(command[0])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)    # not inherited by the exec
try:
    sock.connect(path)
    sock.sendall(("%s\n" % job).encode("utf-8"))
    line = sock.makefile("rb").readline()
except OSError as exc:
    fail(1, "sync gate of job %s: lost the agent: %s" % (job, exc))
if not line.strip():
    fail(1, "sync gate of job %s: called off before the start" % job)
try:
    instant = float(line)
except ValueError:
    fail(1, "sync gate of job %s: bad start instant %r" % (job, line[:40]))
realtime(True)
wait_until(instant)
started = time.time()
try:
    sock.sendall(("%r\n" % started).encode("ascii"))
except OSError:
    pass            # the agent is gone: start anyway, as promised; it kills us if it must
realtime(False)
try:
    os.execv(program, command)
except OSError as exc:
    status = 126 if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC) else 127
    fail(status, "cannot start %r: %s" % (command[0], exc.strerror or exc))
'''
"""The gate, as the text `python -I -c` runs (its arguments: SOCKET JOB PROGRAM ARG...)."""
