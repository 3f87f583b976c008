"""`joblog FILE` keeps the line of a task's last job even when the task is deleted as that job
ends (the task is gone by the time the job's end is told; the file is the job's)."""

from __future__ import annotations

from sched_process import start


def test_the_last_job_of_a_task_deleted_in_its_exit_macro_is_in_the_joblog(home):
    path, runs = home
    joblog = path.parent / "jobs.log"
    run = start(path, f"""
task t
  host LOCAL
  command true
  nmax 1
  joblog {joblog}
  task.exit 0
    delete t
  end
end
run
wait
""")
    runs.append(run)
    status, _, err = run.finish()
    assert status == 0, err
    lines = joblog.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Seq\t"), lines
    assert lines[1].split("\t")[-1] == "true"
