"""The leader partitioned from etcd and from the agents: it stops acting before its lease ends,
the standby leads and takes its running jobs over from the agents, and once healed the old
leader is a standby none of whose late acts is accepted.

Two real `sched --serve --ha` members share one private etcd and the local agents (one secret:
pcontrol.adoption). Everything runs on this host and the agents are reached over a pty, not TCP,
so a network namespace would cut nothing between a controller and its agents; the partition is
made of one cut per link instead:

    leader's sched  -- etcd      a TCP relay, SIGSTOPped (nothing passes, nobody is told)
    leader's pcontrol -- agents  the leader's pcontrol SIGSTOPped: to its agents a cut link
                                 (no heartbeat, no request, no reply); what its sched sends it
                                 meanwhile waits in the socket and goes out at the heal

At the cut a kill of a running job is queued in the leader (a late request). The leader steps
down before its lease ends and stops its pcontrol (the shutdown waits in the frozen socket);
its agent's watchdog gives the silent controller up and the new leader's agent takes the jobs
over (the host's fencing floor is its token now); every run ends once, under the new leader,
with its own exit status. SIGCONT heals both links: the old leader comes back as a standby; its
controller acts late -- it reads the kill and its shutdown, and closing its terminal hangs the
old agent up -- and none of it is accepted: the kill never reaches an agent (the link was given
up), and the hang-up is refused by the old agent (pclient.agent.hang_up: a controller already
given up), which once killed every job the new leader had taken over. The refusal is in the
agents' log (-connect agents with --log: a local agent's stderr is its pty). No late request
reaches an agent over a live link, so no `fenced: token N is lower than M` refusal is made here.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hapool import Pool, lines_of as _lines
from waiting import wait_until_sync

pytestmark = pytest.mark.timeout(180)

TTL = 3

TASKS = """\
catch {{controller host add localhost -slots 40 -connect {{AGENT --slots 40 --log {runs}.agents}}}}
task tick
  host localhost
  npending 10
  periods -poll 0.05 -exec {period}
  task.exec
    command sh -c {{echo "$0 $1" >> {runs}; sleep 6; exit $(($1 % 4))}} tick $job_count
  end
  task.exit default
    exec sh -c "echo [lindex $job_command 3] [lindex $job_command 4] $job_state $exit_status $job_rerun >> {exits}"
  end
end
run
"""


@pytest.fixture
def pool(etcd, tmp_path: Path, request):
    tasks = TASKS.replace("AGENT", f"{sys.executable} -m pclient")
    made = Pool(tmp_path, f"{etcd.url}/partition-{abs(hash(request.node.name))}", ttl=TTL, period=1.0, tasks=tasks,
                secret=os.urandom(32))
    yield made
    made.close()


def test_the_leader_cut_from_etcd_and_its_agents_steps_down_and_its_late_acts_are_refused(pool, etcd):
    a, relay = pool.member_behind_relay("a")
    a.wait_log("serving")
    b = pool.member("b")
    b.wait_log("standby: ")
    wait_until_sync(lambda: len(_lines(pool.runs_file)) >= 3, "a has started 3 jobs", 60)
    a_pcontrol = a.pcontrol_pid()
    assert a_pcontrol is not None
    token_a = _token(a.text())
    listed = pool.attach(a, "jobs -state RUNNING -json")
    assert listed.returncode == 0, listed.stderr
    victim = max(job["id"] for job in json.loads(listed.stdout))
    os.kill(a_pcontrol, signal.SIGSTOP)      # a cut from its agents: nothing passes either way
    killed = pool.attach(a, f"kill {victim}")   # a late request: queued as the partition begins
    assert killed.returncode == 0, killed.stderr
    os.kill(relay.pid, signal.SIGSTOP)       # ... and from etcd
    cut = time.monotonic()
    started_by_a = {int(r[1]) for r in _lines(pool.runs_file)}
    stepped = a.wait_log("no longer the leader", 3 * TTL)
    led = b.wait_log("leading:", 3 * TTL + 20)
    assert stepped - cut < TTL, f"a stopped acting {stepped - cut:.2f} s after the cut: its lease might have ended"
    assert stepped < led
    assert _token(b.text()) > token_a
    agents_log = Path(str(pool.runs_file) + ".agents")
    wait_until_sync(lambda: "took over 1 agent(s)" in _text(b.home / "pcontrol.log")
                    or "took over 1 more agent(s)" in _text(b.home / "pcontrol.log"),
                    "b's agent has taken a's over (the host's fencing floor is b's token now)", 60)
    assert "heard nothing from the controller" in _text(agents_log)   # a's agent gave a's controller up
    offset = len(a.text())
    os.kill(a_pcontrol, signal.SIGCONT)      # healed: a's controller acts late (its kill, its shutdown)
    os.kill(relay.pid, signal.SIGCONT)
    a.wait_log("standby: ", 40, after=offset)
    wait_until_sync(lambda: a.pcontrol_pid() is None, "a's controller has stopped", 30)
    assert "leading:" not in a.text()[offset:]
    wait_until_sync(lambda: {int(r[1]) for r in _lines(pool.exits_file)} >= started_by_a,
                    "the exit macros of a's jobs ran under b", 60)

    target = set(range(max(started_by_a) + 4))   # every run of a's and three past them
    wait_until_sync(lambda: {int(r[1]) for r in _lines(pool.runs_file)} >= target
                    and {int(r[1]) for r in _lines(pool.exits_file)} >= target,
                    f"runs 0..{max(target)} fired and their exit macros ran", 90)
    b.stop()
    a.stop()
    runs = Counter(int(r[1]) for r in _lines(pool.runs_file))
    assert sorted(runs) == list(range(len(runs))) and set(runs.values()) == {1}, runs   # every due run once
    exits = _lines(pool.exits_file)
    assert not [n for n, count in Counter(int(r[1]) for r in exits).items() if count > 1], exits
    for _, n, state, status, *_ in exits:     # each with its true status: no late kill took effect
        assert (state, status) == ("EXIT", str(int(n) % 4)), (n, state, status, _text(agents_log))
    # the late hang-up of a's controller's terminal was refused by its old agent: the jobs b took over went on
    assert "the terminal of a controller already given up is gone (SIGHUP): refused" in _text(agents_log)
    assert "refused a request" not in _text(b.home / "pcontrol.log")
    assert "kill" not in _text(agents_log).lower().replace("killed", ""), _text(agents_log)


def _token(text: str) -> int:
    """The fencing token of a member's first lead, from its log."""
    return int(text.split("leading: ", 1)[1].split("(token ", 1)[1].split(")")[0])


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
