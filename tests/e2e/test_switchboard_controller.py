"""The switchboard on the controller path: a controller job's $PSCHED_OUTBOX lines come back
with its end (pclient -> pcontrol -> sched), and the next controller job of the addressee gets
them in $PSCHED_INBOX on its host; a local job's messages reach a controller job too."""

import shutil
import tempfile
from pathlib import Path

import pytest

from sched_shell import Shell


@pytest.fixture
def home(monkeypatch):
    path = Path(tempfile.mkdtemp(prefix="e2e.", dir="/tmp"))
    monkeypatch.setenv("SCHED_HOME", str(path))
    yield path
    from pcontrol import daemon
    from pcontrol.paths import Paths

    daemon.stop(Paths.for_home(path), kill=True, force=True)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(120)
def test_outbox_and_inbox_through_pcontrol(home):
    sh = Shell()
    sh.run("""
set got {}
task parent
  nmax 1
  command sh -c {printf 'child down since %s\\nlocal-child also for you\\n' "$(hostname)" > "$PSCHED_OUTBOX"; exit 1}
  task.exit default
    lappend got "parent $job_state $exit_status on $job_host"
    resume child
    resume local-child
  end
end
task child
  nmax 1
  active off
  command sh -c {cat "$PSCHED_INBOX"; echo "local-child back from the controller" >> "$PSCHED_OUTBOX"}
  task.exit 0
    lappend got "child on $job_host job: [string trim $stdout] | inbox: [queuelist inbox]"
  end
end
task local-child
  host LOCAL
  nmax 1
  active off
  command sh -c {cat "$PSCHED_INBOX"}
  task.exit 0
    lappend got "local-child: [string map {\\n |} [string trim $stdout]]"
  end
end
run
wait -timeout 60
""")
    got = sh.interp.get_var("got")
    assert "parent EXIT 1 on localhost" in got
    assert "child on localhost job: parent down since" in got and "| inbox: {parent down since" in got
    # the local child's job is made at once; the controller child's message comes later and waits
    assert "local-child: parent also for you" in got
    assert sh.run("messages") == "local-child child {back from the controller}"
    assert sh.run("messages -json").startswith('[{"to": "local-child", "from": "child"')
    sh.close()
