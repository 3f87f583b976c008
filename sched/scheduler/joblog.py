"""The `joblog FILE` task directive's file: one line per finished job, as GNU parallel's --joblog.

    Seq  Host  Starttime  JobRuntime  Send  Receive  Exitval  Signal  Command

Tab-separated, with that header when the file is new or empty. Seq is the job id, Host where
it ran (`:` for a local job, as parallel writes), Starttime the Unix time it started (3
decimals), JobRuntime its run time in seconds, Send and Receive 0 (no files are transferred),
Exitval its exit status (-1 when it did not exit by itself: CRASH, TIMEOUT, KILLED, DOWN,
PENDING), Signal the signal that ended it (0 if none), Command the command line as a shell
would read it (a sync job: `syncrun NAME`). One line is appended per job end, flushed at
once, so the file can be read (or a run analysed and resumed) while the scheduler runs.

JobLog is a job listener of the Scheduler: it sees every job start and end and writes the
ends of the jobs whose task has a joblog.
"""

from __future__ import annotations

import logging
import os
import shlex
from typing import TYPE_CHECKING

from .jobs import Job, Outcome

if TYPE_CHECKING:
    from .loop import Scheduler

log = logging.getLogger(__name__)

__all__ = ["HEADER", "JobLog", "joblog_line"]

HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"


def joblog_line(job: Job) -> str:
    """The joblog line of a finished job."""
    host = ":" if job.local else (job.ran_on or job.host)
    started = job.started if job.started is not None else (job.ended or job.created)
    exitval = job.status if job.outcome is Outcome.EXIT and job.status is not None else -1
    command = f"syncrun {job.sync}" if job.sync else shlex.join(job.argv)
    return (f"{job.id}\t{host}\t{started:.3f}\t{job.elapsed or 0.0:.3f}\t0\t0\t{exitval}\t"
            f"{job.signal or 0}\t{command}\n")


class JobLog:
    """Appends each finished job of a task with `joblog FILE` to that file."""

    def __init__(self, sched: "Scheduler"):
        self.sched = sched

    def __call__(self, job: Job) -> None:
        if not job.done:
            return
        if not job.joblog:  # (the job's, not the task's: a deleted task is gone by its last job's end)
            return
        path = os.path.expanduser(job.joblog)
        try:
            with open(path, "a", encoding="utf-8") as fh:
                if fh.tell() == 0:
                    fh.write(HEADER)
                fh.write(joblog_line(job))
        except OSError as exc:
            self.sched.report(f"task {job.task} job {job.id}: cannot write the joblog {path}: "
                              f"{exc.strerror or exc}")
