"""Every example script in scripts/examples runs headless to its end, and says what it should."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pcontrol import daemon
from pcontrol.paths import Paths

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "scripts" / "examples"
SCHED = Path(sys.executable).with_name("sched")
COMMAND = [str(SCHED)] if SCHED.exists() else [sys.executable, "-m", "psched.shell.cli"]

EXPECTED = {
    "language.sched": ["hello, world: 6 x 7 = 42", "fib 0..9: 0 1 1 2 3 5 8 13 21 34", "15: fizzbuzz",
                       "regexp found node number 3", "caught: divide by zero", "tour done"],
    "pipeline.sched": ["processed 4 item(s):", "  ALPHA on localhost", "  GAMMA on localhost"],
    "fleet.sched": ["fleet probe: 1 of 1 host(s) answered (minhosts 1): ok"],
    "probes.sched": ["ran 3 probes in the window; closest two were at least 0.3 s apart: yes"],
    "switchboard.sched": ["web-probe: unreachable: router 10.0.0.1 does not answer (told by router-probe)",
                          "db-probe: unreachable: router 10.0.0.1 does not answer (told by router-probe)",
                          "switchboard: 2 of 2 children reported unreachable, 0 failed on their own",
                          "still waiting: 0 message(s)"],
    "demo.sched": ["crashed with signal 11", "exit status 3: disk quota exceeded", "(TIMEOUT)",
                   "consumer job", "== done:"],
}


def test_every_example_is_listed_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.sched")) == sorted(EXPECTED)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_headless(name):
    home = tempfile.mkdtemp(prefix="ex.", dir="/tmp")
    env = dict(os.environ, SCHED_HOME=home)
    try:
        done = subprocess.run(COMMAND + [str(EXAMPLES / name)], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=110)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        for expected in EXPECTED[name]:
            assert any(expected in line for line in lines), f"{name}: no line with {expected!r} in:\n{done.stdout}"
        # a sched that started pcontrol itself stops it when it leaves with nothing out
        assert not (Path(home) / "pcontrol.pid").exists()
    finally:
        daemon.stop(Paths.for_home(home), kill=True, force=True)  # only when the test failed
        shutil.rmtree(home, ignore_errors=True)
