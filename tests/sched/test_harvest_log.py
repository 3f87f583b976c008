"""The harvest log (psched.scheduler.remote.HarvestLog): what a restarted sched knows of the exit
macros an earlier one ran. A macro begun and never ended (its sched was killed in it) is told
apart from one that ended; an older sched's bare keys count as ended; compacting after an
adoption keeps the keys of jobs that ended while the controller's list was being read."""

from psched.scheduler.remote import HarvestLog


def test_a_macro_begun_and_not_ended_is_interrupted_for_the_next_sched(tmp_path):
    path = tmp_path / "harvested.log"
    log = HarvestLog(path)
    log.begin("1@10.0")
    log.end("1@10.0")
    log.begin("2@11.0")  # the sched is killed here, in job 2's macro
    again = HarvestLog(path)
    assert ("1@10.0" in again, again.interrupted("1@10.0")) == (True, False)
    assert ("2@11.0" in again, again.interrupted("2@11.0")) == (True, True)
    assert "3@12.0" not in again and not again.interrupted("3@12.0")
    again.end("2@11.0")  # the next sched ran it again to its end
    assert not HarvestLog(path).interrupted("2@11.0")


def test_an_older_scheds_bare_keys_count_as_ended(tmp_path):
    path = tmp_path / "harvested.log"
    path.write_text("5@1.0\n6@2.0\n")
    log = HarvestLog(path)
    assert "5@1.0" in log and not log.interrupted("5@1.0") and not log.interrupted("6@2.0")


def test_compacting_after_an_adoption_keeps_keys_added_while_the_list_was_read(tmp_path):
    """The duplicate the random fault test found: a job submitted while sched was adopting
    ended and had its macro before the adoption's end; the compaction (from a list made before
    that job existed) dropped its key, so the next sched, killed before the acknowledgement
    reached pcontrol, ran its macro a second time."""
    path = tmp_path / "harvested.log"
    log = HarvestLog(path)
    for key in ("1@1.0", "2@2.0"):
        log.begin(key)
        log.end(key)
    log.begin("3@3.0")
    listed = set(log.keys)  # the adoption asks the controller for its list
    log.begin("9@9.0")      # a job not in that list ends meanwhile
    log.end("9@9.0")
    log.compact({"2@2.0", "3@3.0"}, listed)  # 1 was harvested; 9 is not in the list
    assert log.keys == {"2@2.0", "3@3.0", "9@9.0"}
    reread = HarvestLog(path)
    assert reread.keys == {"2@2.0", "3@3.0", "9@9.0"}
    assert reread.unfinished == {"3@3.0"}  # still begun and not ended, across the rewrite


def test_a_plain_end_writes_only_its_key_held_until_flushed(tmp_path):
    """A job whose end runs no macro and writes nothing (Scheduler.end_is_plain) gets no
    `+KEY`; its `KEY` is held (at most to the end of the loop turn) and written by `flush`,
    which the link calls before the job's harvest goes to the controller."""
    from psched.scheduler.eventloop import get_loop  # the process's loop: held lines wait for its turn

    path = tmp_path / "harvested.log"

    async def plain_ends() -> tuple[str, set[str], str]:
        log = HarvestLog(path)
        log.ended_plainly("1@1.0")
        log.ended_plainly("2@2.0")
        before = path.read_text() if path.exists() else ""
        known = set(log.keys)
        log.flush()
        return before, known, path.read_text()

    before, known, after = get_loop().run_until_complete(plain_ends())
    assert (before, known, after) == ("", {"1@1.0", "2@2.0"}, "1@1.0\n2@2.0\n")
    reread = HarvestLog(path)
    assert "1@1.0" in reread and not reread.interrupted("1@1.0")


def test_an_end_is_plain_only_when_it_runs_no_macro_and_writes_nothing(tmp_path):
    """Scheduler.end_is_plain: what decides that a controller job's end needs no `+KEY`."""
    from sched_world import World, task

    from psched.scheduler.jobs import Outcome

    w = World()
    w.run(task("bare", "nmax 1", host="h1"))
    w.run(task("macro0", "nmax 1", "task.exit 0\n    set x 1\n  end", host="h1"))
    w.run(task("logged", "nmax 1", f"joblog {tmp_path / 'jobs.log'}", host="h1"))
    w.run(task("out", "nmax 1", f"stdout {tmp_path / 'out'}", host="h1"))
    w.run("run")
    w.step()
    jobs = {j.task: j for j in w.remote.submitted}
    plain = w.sched.end_is_plain
    assert plain(jobs["bare"], Outcome.EXIT, 0)
    assert not plain(jobs["macro0"], Outcome.EXIT, 0)
    assert plain(jobs["macro0"], Outcome.EXIT, 1)  # no macro for status 1, nor a default
    assert plain(jobs["macro0"], Outcome.KILLED, None)
    assert not plain(jobs["logged"], Outcome.EXIT, 0)
    assert not plain(jobs["out"], Outcome.EXIT, 0)
