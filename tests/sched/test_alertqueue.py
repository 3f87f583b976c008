"""pcontrol's alert events into the script's `alerts` queue (psched.scheduler.alertqueue); the
whole path, pcontrol to a reacting task, is in tests/e2e/test_pull_probes.py."""

from psched.scheduler.alertqueue import queue_alert

from sched_world import World

RECORD = {"state": "alert", "host": "probe17", "condition": "missed",
          "subject": "pcontrol: probe probe17 missed 3 run times", "body": "last seen {never}"}


def test_an_alert_is_a_line_of_the_alerts_queue_only_when_the_script_made_it():
    w = World()
    assert queue_alert(w.sched.interp, RECORD) is False
    assert "alerts" not in w.sched.interp.queues
    w.run("queueinit alerts")
    w.sched.controller_alert(RECORD)
    assert w.run("queuesize alerts") == "1"
    w.run("lassign [queuepop alerts] state host condition subject body")
    assert [w.run(f"set {v}") for v in ("state", "host", "condition", "subject", "body")] == [
        "alert", "probe17", "missed", "pcontrol: probe probe17 missed 3 run times", "last seen {never}"]
