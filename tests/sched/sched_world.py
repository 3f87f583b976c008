"""A scheduler on a fake clock with fake backends, for the tests of tests/sched/."""

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import psched
from psched.lang.clock import FakeClock
from psched.scheduler.jobs import Outcome
from psched.scheduler.attach import SCHEDULER_KEY
from psched.scheduler.loop import Scheduler

UTC = ZoneInfo("UTC")
MONDAY = datetime(2024, 1, 1, 0, 0, tzinfo=UTC).timestamp()  # a Monday, 00:00


class FakeBackend:
    """Records submitted jobs; the test ends them."""

    def __init__(self):
        self.submitted = []
        self.killed = []

    def submit(self, job):
        self.submitted.append(job)

    def kill(self, job):
        self.killed.append(job)
        return True

    home = None  # no run ledger
    submit_keys_held = None

    def task_defined(self, task):
        pass

    leads = {}  # host -> seconds: a test's pull hosts

    def lead(self, host):
        return self.leads.get(host, 0.0)

    def submit_key(self, job):
        return None

    def orphans_note(self):
        return None

    async def connect(self):
        pass

    async def aclose(self):
        pass

    def jobs_out(self):
        return sum(1 for job in self.submitted if not job.done)


class World:
    """An interpreter whose scheduler runs on a fake clock with fake backends."""

    def __init__(self, start=MONDAY, tz=UTC):
        self.out = io.StringIO()
        self.interp = psched.Interp(stdout=self.out)
        self.clock = FakeClock(start_mono=1000.0, start_wall=start, tz=tz)
        self.local, self.remote = FakeBackend(), FakeBackend()
        self.sched = Scheduler(self.interp, self.clock, local=self.local, remote=self.remote)
        self.messages = []
        self.sched.on_message = self.messages.append
        self.interp.extensions[SCHEDULER_KEY] = self.sched

    def run(self, script):
        return self.interp.eval(script, "test.sched")

    def step(self):
        return self.sched.step()

    def advance(self, seconds):
        self.clock.advance(seconds)
        return self.sched.step()

    def end(self, job, outcome=Outcome.EXIT, status=0, **kw):
        self.sched.job_started(job, "h")
        self.sched.job_ended(job, outcome, status=status if outcome is Outcome.EXIT else None, **kw)

    @property
    def jobs(self):
        return self.local.submitted + self.remote.submitted

    def output(self):
        return self.out.getvalue()


def task(name="t", *lines, host="LOCAL", command="true"):
    body = "\n".join(f"  {line}" for line in lines)
    return f"task {name}\n  command {command}\n  host {host}\n{body}\nend\n"
