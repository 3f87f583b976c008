"""Pull probes, alerts and clocks through the real programs (issue 16): one `pcontrol serve
--pull-listen 127.0.0.1:PORT --alerts FILE` per module, `pclient --pull` probes as processes, and a
real SMTP server (aiosmtpd) started here on a free port, which receives pcontrol's mail (the world:
tests/tools/pullworld.py).

Each test uses probes of its own names and deletes them at its end, so that one probe's misses
never make another test's mail."""

from __future__ import annotations

import errno
import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from pclient.probe import Probe
from pclient.pullwire import PullError
from procs import alive
from pullworld import SCHED, Mailbox, PullWorld, Smtp, kill, pull_world
from waiting import wait_until_sync

WAIT = 30.0
INTERVAL = 0.3



@pytest.fixture(scope="module")
def world() -> Iterator[PullWorld]:
    smtp = Smtp(Mailbox())
    smtp.start()
    try:
        with pull_world("pull.", "--pull-interval", str(INTERVAL), "--pull-grace", str(INTERVAL), "--misses", "3",
                        "--skew-threshold", "1", wait=WAIT, smtp=smtp,
                        mail={"from": "pcontrol@test.example", "to": ["noc@test.example", "oncall@test.example"],
                              "retry_min": 0.1, "retry_max": 0.5}) as w:
            yield w
    finally:
        smtp.stop()


def test_a_probe_checks_in_runs_its_job_and_reports_it(world: PullWorld) -> None:
    key = world.add_probe("p-run")
    probe = world.probe("p-run", key)
    wait_until_sync(lambda: world.host("p-run")["agent"].get("pull_last"), "the probe checked in")
    job = world.submit("p-run", "sh", "-c", "echo from the probe; echo oops >&2; exit 3")
    ended = world.done(job)
    assert ended["outcome"] == "EXIT" and ended["status"] == 3 and ended["ran_on"] == "p-run"
    output = world.pcontrol("check", "job", job, "-output").stdout
    assert "from the probe" in output and "oops" in output
    assert world.state("p-run")["report"] is None  # acknowledged, so forgotten by the probe
    kill(probe)
    world.forget("p-run")


def test_a_wrong_key_and_another_probes_name_are_refused(world: PullWorld) -> None:
    key_a = world.add_probe("p-a")
    world.add_probe("p-b")
    wrong = world.home / "wrong.key"
    wrong.write_text(os.urandom(32).hex())
    refused = world.probe("p-a", wrong)
    assert refused.wait(WAIT) == 3
    assert "forbidden" in (world.home / "p-a.log").read_text()
    # a probe that claims to be another (its own key, the other's name) is refused the same way
    impostor = world.probe("p-b", key_a, "--state-dir", str(world.home / "impostor"))
    assert impostor.wait(WAIT) == 3
    # and a probe cannot report a job that is not its own
    job_b = world.submit("p-b", "true")
    state_dir = world.home / "forger"
    state_dir.mkdir()
    forger = Probe(("127.0.0.1", world.pull_port), "p-a", bytes.fromhex(key_a.read_text().strip()), state_dir)
    forger.state["report"] = {"job": job_b, "outcome": "exit", "status": 0, "signal": None, "elapsed": 0.0,
                              "stdout": "forged", "stderr": "", "reason": None}
    with pytest.raises(PullError, match=f"job {job_b} is not a job of probe p-a"):
        forger.check_in()
    assert world.job(job_b)["state"] != "DONE"  # p-b's job still waits for p-b
    world.forget("p-a", "p-b")


def test_a_probe_killed_mid_run_reports_the_job_as_a_crash_when_it_starts_again(world: PullWorld) -> None:
    key = world.add_probe("p-kill")
    probe = world.probe("p-kill", key)
    job = world.submit("p-kill", "sleep", "60")
    wait_until_sync(lambda: world.state("p-kill").get("pid"), "the probe started the job")
    left = world.state("p-kill")["pid"]
    kill(probe)
    assert world.job(job)["state"] == "BUSY"
    world.probe("p-kill", key)
    ended = world.done(job)
    assert ended["outcome"] == "CRASH" and "restarted while the job ran" in ended["reason"]
    wait_until_sync(lambda: not os.path.exists(f"/proc/{left}") or "Z" in open(f"/proc/{left}/stat").read().split()[2],
                    "the job's process was killed")
    world.forget("p-kill")


def test_three_misses_make_one_mail_and_the_return_one_recovery_mail(world: PullWorld) -> None:
    key = world.add_probe("p-quiet")
    probe = world.probe("p-quiet", key)
    wait_until_sync(lambda: world.host("p-quiet")["agent"].get("pull_last"), "the probe checked in")
    kill(probe)
    text = wait_until_sync(lambda: world.smtp.mailbox.about("p-quiet"), "the alert mail")[0].text
    # --misses 3: the alert counts the run times gone by when pcontrol's check (every 75 ms)
    # saw the third; on a loaded machine two may go by between two checks, and it says 4
    # (test_checkins_skew holds the clock for the exact counts). It says what pcontrol logged.
    said = re.search(r"^Subject: pcontrol: probe p-quiet missed (\d+) run times\r?$", text, re.M)
    assert said, text
    count = int(said.group(1))
    logged = re.findall(r"p-quiet: missed a run time \((\d+) in a row\)", (world.home / "pcontrol.log").read_text())
    assert count >= 3 and count == next((int(n) for n in logged if int(n) >= 3), None), (count, logged)
    assert f"has not checked in for {count} consecutive run times" in text
    wait_until_sync(lambda: world.host("p-quiet")["agent"].get("pull_missed", 0) >= count + 3,
                    "three more run times went by")
    alerts = world.smtp.mailbox.about("p-quiet")
    assert len(alerts) == 1, [m.subject for m in alerts]  # once per episode
    assert alerts[0].sender == "pcontrol@test.example"
    assert alerts[0].recipients == ["noc@test.example", "oncall@test.example"]
    world.probe("p-quiet", key)
    wait_until_sync(lambda: len(world.smtp.mailbox.about("p-quiet")) == 2, "the recovery mail")
    assert "Subject: pcontrol: probe p-quiet is back" in world.smtp.mailbox.about("p-quiet")[1].text
    world.forget("p-quiet")


def test_an_alert_waits_out_a_mail_server_that_is_down(world: PullWorld) -> None:
    world.smtp.stop()
    try:
        world.pcontrol("alert", "smtpdown drill", "sent while the server was down")
        wait_until_sync(lambda: "alert mail to 127.0.0.1" in (world.home / "pcontrol.log").read_text(),
                        "a failed attempt")
        assert world.smtp.mailbox.about("smtpdown") == []
    finally:
        world.smtp.start()
    mails = wait_until_sync(lambda: world.smtp.mailbox.about("smtpdown"), "the mail, once the server is back")
    assert len(mails) == 1 and "sent while the server was down" in mails[0].text


def test_a_probe_clock_offset_is_measured_and_past_the_threshold_it_is_skewed(world: PullWorld) -> None:
    fine, skewed = world.add_probe("p-clock1"), world.add_probe("p-clock2")
    world.probe("p-clock1", fine, "--clock-offset", "0.4")
    world.probe("p-clock2", skewed, "--clock-offset", "-2.5")
    for name, offset in (("p-clock1", 0.4), ("p-clock2", -2.5)):
        agent = wait_until_sync(lambda: (lambda a: a if a.get("clock_offset") is not None else None)(
            world.host(name)["agent"]), f"{name}'s offset")
        assert abs(agent["clock_offset"] - offset) < 0.020, agent
    assert "skewed" not in world.host("p-clock1")["agent"]
    said = re.fullmatch(r"clock offset (\S+) s \(over 1 s\)", world.host("p-clock2")["agent"]["skewed"])
    assert said and abs(float(said.group(1)) + 2.5) < 0.020, said
    assert "SKEWED" in world.pcontrol("hosts").stdout
    mail = wait_until_sync(lambda: world.smtp.mailbox.about("p-clock2"), "the skew alert")
    assert "Subject: pcontrol: host p-clock2 is SKEWED" in mail[0].text
    world.forget("p-clock1", "p-clock2")


def test_a_report_survives_a_controller_restart_and_is_taken_once(world: PullWorld) -> None:
    key = world.add_probe("p-restart")
    world.probe("p-restart", key)
    go = world.home / "p-restart.go"
    os.mkfifo(go)
    # the job ends when the test writes to the fifo: once pcontrol is down, however slow its stop
    # (-timeout: or in a minute, if the test failed before it wrote)
    job = world.pcontrol("job", "-host", "p-restart", "-required", "-timeout", "60", "--",
                         "sh", "-c", f"read line < {go}; echo done").stdout.strip()
    wait_until_sync(lambda: world.state("p-restart").get("running"), "the probe runs the job")
    world.stop("-force")  # the job is out: its probe keeps it
    try:
        writer = wait_until_sync(lambda: _fifo_writer(go), "the job reads its fifo")
        os.write(writer, b"go\n")
        os.close(writer)
        wait_until_sync(lambda: world.state("p-restart").get("report"), "the job ended on the probe")
        wait_until_sync(lambda: "check-in failed" in (world.home / "p-restart.log").read_text(),
                        "the probe tried to report while pcontrol was down")
    finally:
        world.start()  # (also after a failure: the module's later tests need it)
    ended = world.done(job)
    assert ended["outcome"] == "EXIT" and ended["status"] == 0
    wait_until_sync(lambda: world.state("p-restart").get("report") is None, "the report acknowledged")
    # and the next job still reaches it
    assert world.done(world.submit("p-restart", "true"))["status"] == 0
    assert (world.home / "pcontrol.log").read_text().count("p-restart: refused") == 0
    world.forget("p-restart")


def _fifo_writer(path) -> int | None:
    """A descriptor writing to the fifo `path` once a reader has it open (None before)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader yet
            return None
        raise


SCHED_SCRIPT = """
task ndt
  command sh -c {echo measured by the probe}
  host -each {p-sched1 p-sched2}
  nmax 2
  stdout -var out
  task.exit 0
    puts "job $job_id on $job_host: [string trim $out]"
    alert "schedprobe $job_host done" "it said: $out"
  end
end
run
wait ndt
"""


def test_the_task_language_drives_pull_hosts_and_its_alert_command_mails(world: PullWorld) -> None:
    for name in ("p-sched1", "p-sched2"):
        world.probe(name, world.add_probe(name))
    done = world.sched(SCHED_SCRIPT, "probes.sched")
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines())
    assert [re.sub(r"job \d+", "job N", line) for line in lines] == [
        "job N on p-sched1: measured by the probe", "job N on p-sched2: measured by the probe"]
    for name in ("p-sched1", "p-sched2"):
        mails = wait_until_sync(lambda: world.smtp.mailbox.about(f"schedprobe {name}"), f"the alert of {name}")
        assert "it said: measured by the probe" in mails[0].text
    world.forget("p-sched1", "p-sched2")


NOSKEW_SCRIPT = """
task plain
  command sh -c {echo plain}
  host -each {p-skewed p-inline}
  nmax 2
  task.exit 0
    puts "plain ran on $job_host"
  end
end
task careful
  command sh -c {echo careful}
  host p-skewed -required -noskew
  nmax 1
  periods -pending 2
  task.exit pending
    puts "careful $job_state: $job_reason"
  end
end
run
wait plain careful
"""


def test_a_noskew_task_never_runs_on_a_skewed_host_and_a_plain_one_does(world: PullWorld) -> None:
    skewed_key = world.add_probe("p-skewed")
    skewed = world.probe("p-skewed", skewed_key, "--clock-offset", "2.5")
    world.probe("p-inline", world.add_probe("p-inline"))
    wait_until_sync(lambda: world.host("p-skewed")["agent"].get("skewed"), "p-skewed is SKEWED")
    wait_until_sync(lambda: world.host("p-inline")["agent"].get("pull_last"), "p-inline checked in")
    # waits while the host is SKEWED, and runs once its clock is back in line
    waiting = world.pcontrol("job", "-host", "p-skewed", "-required", "-noskew", "--", "echo", "later").stdout.strip()
    assert world.job(waiting)["noskew"] is True
    done = world.sched(NOSKEW_SCRIPT, "noskew.sched")
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines())
    assert lines[0].startswith("careful PENDING"), lines  # its pending time ran out: it never went there
    assert lines[1:] == ["plain ran on p-inline", "plain ran on p-skewed"], lines  # ordinary tasks use it
    assert world.job(waiting)["state"] == "PENDING"  # the probe checked in many times meanwhile
    kill(skewed)
    world.probe("p-skewed", skewed_key, "--clock-offset", "0")
    ended = world.done(waiting)
    assert ended["outcome"] == "EXIT" and ended["status"] == 0 and ended["ran_on"] == "p-skewed"
    assert "skewed" not in world.host("p-skewed")["agent"]
    world.forget("p-skewed", "p-inline")


ALERT_SCRIPT = """
queueinit alerts
controller hosts
exec touch {READY}
task react
  host LOCAL
  nmax 2
  periods -poll 0.1
  task.exec
    if {![queuepop alerts -var line]} skip
    lassign $line state host condition subject
    if {$condition ne "skew" || $host ne "p-alerted"} skip
    command echo "$state $condition $host: $subject"
  end
  stdout -var out
  task.exit 0
    puts [string trim $out]
  end
end
run
wait react
"""


def test_a_script_reacts_to_alert_events_through_its_alerts_queue(world: PullWorld) -> None:
    key = world.add_probe("p-alerted")
    ready = world.home / "alert-script.ready"
    script = world.home / "alerts.sched"
    script.write_text(ALERT_SCRIPT.replace("{READY}", str(ready)))
    sched = subprocess.Popen([SCHED, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ, SCHED_HOME=str(world.home)))
    try:
        wait_until_sync(lambda: ready.exists() or sched.poll() is not None, "sched subscribed", WAIT)
        assert sched.poll() is None, sched.communicate()
        probe = world.probe("p-alerted", key, "--clock-offset", "2.5")
        wait_until_sync(lambda: world.host("p-alerted")["agent"].get("skewed"), "p-alerted is SKEWED")
        kill(probe)
        world.probe("p-alerted", key, "--clock-offset", "0")
        out, err = sched.communicate(timeout=60)
    finally:
        if sched.poll() is None:
            sched.kill()
            sched.wait()
    assert sched.returncode == 0, err
    assert out.splitlines() == ["alert skew p-alerted: pcontrol: host p-alerted is SKEWED",
                                "recovery skew p-alerted: pcontrol: host p-alerted clock is back in line"], (out, err)
    world.forget("p-alerted")


def test_a_probe_job_that_forks_a_grandchild_and_times_out_leaves_no_process(world: PullWorld) -> None:
    key = world.add_probe("p-contain")
    world.probe("p-contain", key)
    # the grandchild leaves the job's process group and session (setsid): a kill of the group misses it
    job = world.pcontrol("job", "-host", "p-contain", "-required", "-timeout", "1", "--", "sh", "-c",
                         "setsid sleep 300 & echo grandchild $!; sleep 300").stdout.strip()
    ended = world.done(job)
    assert ended["outcome"] == "TIMEOUT", ended
    grandchild = int(re.search(r"grandchild (\d+)", world.pcontrol("stdout", job).stdout).group(1))
    wait_until_sync(lambda: not alive(grandchild), "the grandchild is gone", 5.0)  # only init's reaping is waited for
    world.forget("p-contain")


def test_a_probe_jobs_output_is_spooled_every_byte_and_reported_as_its_head(world: PullWorld) -> None:
    key = world.add_probe("p-spool")
    world.probe("p-spool", key)
    job = world.pcontrol("job", "-host", "p-spool", "-required", "-output-limit", "1000", "--", "sh", "-c",
                         "head -c 3000000 /dev/zero | tr '\\0' x; echo tail").stdout.strip()
    ended = world.done(job)
    assert ended["outcome"] == "EXIT" and ended["status"] == 0
    assert ended["stdout_bytes"] == 3000005 and ended["stdout_truncated"] is True
    assert world.pcontrol("stdout", job).stdout.rstrip("\n") == "x" * 1000  # the head, cut to the output limit
    spooled = world.home / "probes" / "p-spool.spool" / f"{job}.stdout"
    assert spooled.stat().st_size == 3000005  # every byte, on the probe's disk
    assert spooled.read_bytes().endswith(b"x" * 10 + b"tail\n")
    world.forget("p-spool")
