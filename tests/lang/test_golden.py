"""Golden scripts: each tests/lang/golden/NAME.sched runs in a fresh interpreter and its output
must equal NAME.out exactly. A script that ends in an error has the rendered error (position,
source line, caret, call chain) appended to its output as `ERROR: ...`.

To see what a script prints now: `python tests/lang/test_golden.py NAME` (prints, writes nothing);
after checking it by eye, `python tests/lang/test_golden.py --update NAME` writes NAME.out.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

import psched
from psched.lang.errors import SchedError

GOLDEN = Path(__file__).parent / "golden"
SCRIPTS = sorted(p.stem for p in GOLDEN.glob("*.sched"))


def run_golden(name: str) -> str:
    """The output of golden script `name`, run from the golden folder (so positions read `NAME.sched:L:C`)."""
    out = io.StringIO()
    interp = psched.Interp(stdout=out)
    saved = os.getcwd()
    os.chdir(GOLDEN)
    try:
        interp.eval_file(f"{name}.sched")
    except SchedError as err:
        out.write("ERROR: " + err.render() + "\n")
    finally:
        os.chdir(saved)
    return out.getvalue()


def test_there_are_golden_scripts():
    assert len(SCRIPTS) >= 3
    for name in SCRIPTS:
        assert (GOLDEN / f"{name}.out").exists(), f"{name}.sched has no {name}.out"


@pytest.mark.parametrize("name", SCRIPTS)
def test_golden(name):
    expected = (GOLDEN / f"{name}.out").read_text(encoding="utf-8")
    assert run_golden(name) == expected


if __name__ == "__main__":
    update = "--update" in sys.argv
    for name in [a for a in sys.argv[1:] if a != "--update"] or SCRIPTS:
        text = run_golden(name)
        if update:
            (GOLDEN / f"{name}.out").write_text(text, encoding="utf-8")
            print(f"wrote {name}.out")
        else:
            print(f"===== {name}\n{text}", end="")
