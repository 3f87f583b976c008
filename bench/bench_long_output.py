#!/usr/bin/env python3
"""Controller jobs whose output does not fit in their end event (> 8 KiB), per job, with and
without an exit macro that reads $stdout (issue 13: the rest of the output is fetched only
when a macro reads it).

    .venv/bin/python bench/bench_long_output.py [--jobs 300] [--rounds 3] [--lines 20000] [--base DIR]

Each job is `seq LINES` (20,000 lines: 109 KB), `host NONE` on the embedded default, cold (as
bench_user.py figure 2: sched starts pcontrol and its localhost agent, and stops them at the
end); `sched script` start to exit, median of alternating rounds, beside `xargs -P4` running the
same commands. `--base DIR` runs the same two scripts with an earlier tree of the project (made
with `git archive main | tar -x -C DIR`) first on the import path, in the same rounds: the
before and after of one change side by side.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_user import compile_project, fresh_home, median_rows, stop_pcontrol, wall, SCHED  # noqa: E402

MACROS = {
    "no $stdout": "set seen $exit_status",
    "reads $stdout": "set seen [string length $stdout]",
}


def script(jobs: int, lines: int, macro: str) -> str:
    return f"""
task many
  command seq {lines}
  host NONE
  nmax {jobs}
  npending 8
  task.exit default
    {macro}
  end
end
run
wait
"""


def shim(base: Path) -> str:
    """A folder whose psched, pcontrol and pclient are those of `base` (for PYTHONPATH)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-base.", dir="/tmp"))
    atexit.register(shutil.rmtree, folder, True)   # removed when the bench ends
    for name, sub in (("psched", "sched"), ("pcontrol", "pcontrol"), ("pclient", "pclient")):
        (folder / name).symlink_to(base.resolve() / sub)
    return str(folder)


def cold_run(text: str, pythonpath: str | None) -> float:
    home = fresh_home()
    path = Path(home) / "bench.sched"
    path.write_text(text)
    env = dict(os.environ, SCHED_HOME=home)
    env.pop("PCONTROL_CONNECT", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cwd = os.getcwd()
    os.chdir("/tmp")  # not the project's folder, whose packages would come first on the path
    try:
        return wall([SCHED, str(path)], env=env)
    finally:
        os.chdir(cwd)
        stop_pcontrol(home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--base", type=Path, help="an earlier tree of the project, run beside this one")
    args = parser.parse_args()
    compile_project()
    trees = [("this tree", None)]
    if args.base is not None:
        trees.insert(0, ("base", shim(args.base)))
    runners = []
    for tree, pythonpath in trees:
        for what, macro in MACROS.items():
            text = script(args.jobs, args.lines, macro)
            runners.append((f"sched ({tree}), macro {what}",
                            lambda text=text, pythonpath=pythonpath: cold_run(text, pythonpath)))
    runners.append(("xargs -P4 (the same commands)",
                    lambda: wall(f"yes {args.lines} | head -n {args.jobs} | xargs -P4 -n1 seq >/dev/null", shell=True)))
    rows = median_rows(args.rounds, runners)
    print(f"\n{args.jobs} controller jobs each writing `seq {args.lines}` "
          f"({len(''.join(f'{i}' + chr(10) for i in range(1, args.lines + 1)))} bytes), host NONE, embedded default, "
          f"cold (median of {args.rounds})")
    print(f"  {'runner':<46} {'seconds':>8} {'ms/job':>8}")
    for name, secs in rows:
        print(f"  {name:<46} {secs:>8.2f} {secs / args.jobs * 1000:>8.2f}" if secs else f"  {name:<46} -")


if __name__ == "__main__":
    main()
