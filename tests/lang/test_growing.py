"""`append` and `lappend` grow a variable in place (psched.lang.interp.Growing): the work of one
call does not grow with the value, so a long-running scheduler can keep appending to one list.

Measured through the real `sched` on a .sched script, as CPU seconds of the child process (not
wall time: other work on the machine does not count): N appends of each kind (lappend and
append, to a global, a proc's local, a global through `global`, twice in a row in a macro) against the same loops with
`set` in place of the appends. Growing in place costs about what the `set` does per call;
copying the value at each call (the old way, quadratic) costs tens of times more at this N.
Value semantics (a grown value never changes a copy anyone holds) are checked against tclsh in
tclcompat/scripts/growing.tcl.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCHED = Path(sys.executable).parent / "sched"

N = 80_000

SCRIPT = """\
set n {n}
set l {{}}
for {{set i 0}} {{$i < $n}} {{incr i}} {{ {lappend} l $i }}
set s {{}}
for {{set i 0}} {{$i < $n}} {{incr i}} {{ {append} s "x$i " }}
proc local {{n}} {{ set w {{}}; for {{set i 0}} {{$i < $n}} {{incr i}} {{ {lappend} w "w $i" }}; return [string length $w] }}
proc viaglobal {{n}} {{ global g gs; for {{set i 0}} {{$i < $n}} {{incr i}} {{ {lappend} g $i; {append} gs $i }} }}
set g {{}}
viaglobal $n
set m {{}}
macro twice v
  {lappend} m $v
  {lappend} m x
end
for i 0 $n
  twice $i
end
echo [string length $l] [string length $s] [local $n] [string length $g] [string length $m]
"""


def cpu_seconds(tmp_path: Path, n: int, lappend: str, append: str) -> float:
    """CPU seconds (user + system) of one `sched` run of SCRIPT with n calls of each kind."""
    script = tmp_path / f"grow-{lappend}.sched"
    script.write_text(SCRIPT.format(n=n, lappend=lappend, append=append))
    proc = subprocess.Popen([str(SCHED), str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, err.decode()
    assert len(out.split()) == 5, out
    return usage.ru_utime + usage.ru_stime


def test_appends_cost_about_what_a_set_does_at_any_length(tmp_path: Path):
    base = cpu_seconds(tmp_path, 0, "lappend", "append")  # start-up, taken off both
    sets = cpu_seconds(tmp_path, N, "set", "set") - base
    appends = cpu_seconds(tmp_path, N, "lappend", "append") - base
    ratio = appends / max(sets, 1e-3)
    # In place: 1.3 to 2. Copying at each call: 5 (only the second of two appends in a row) to 20.
    assert ratio < 3.5, f"{N} appends of each kind: {appends:.2f} s CPU, the same loops with set: {sets:.2f} s"


LONG_EDITS = """\
for {{set i 0}} {{$i < {n}}} {{incr i}} {{ lappend results(probe) "item $i"; set count [llength $results(probe)] }}
set l {{}}
for {{set i 0}} {{$i < {n}}} {{incr i}} {{ lappend l x }}
for {{set i 0}} {{$i < {n}}} {{incr i}} {{ lset l $i "w $i" }}
proc viaupvar {{n}} {{ upvar results(up) r; for {{set i 0}} {{$i < $n}} {{incr i}} {{ lappend r "u $i" }} }}
viaupvar {n}
for {{set r 0}} {{$r < 300}} {{incr r}} {{ for {{set h 0}} {{$h < 200}} {{incr h}} {{ lappend perhost(h$h) "line $r of host $h" }} }}
for {{set i 0}} {{$i < {n}}} {{incr i}} {{ dict set seen host$i "up $i" }}
for {{set i 0}} {{$i < {n} / 4}} {{incr i}} {{ dict lappend byhost h "line $i" }}
echo $count [lindex $l end] [llength $results(up)] [llength [array get results]] \
    [dict size $seen] [llength [dict get $byhost h]] [llength $perhost(h199)]
"""


def test_long_lists_and_dictionaries_are_not_read_again_at_each_change(tmp_path: Path):
    """`lappend` to an array element (no Growing there: an array hands out strings) and `lset`
    keep a long list's elements beside its text (psched.lang.tcllist.EditedLists), `dict set`
    and `dict lappend` of one key a long dictionary's quoted keys and values: each call copies
    the text once instead of reading and quoting the whole value again in Python. Before,
    5,000 lappends of "item $i" to one element took 20 s of CPU, 5,000 lsets 41 s, 3,000
    `dict set` of new keys 6.5 s and 3,000 `dict lappend` to one key 15 s (all quadratic);
    300 rounds of one lappend to each of 200 array elements took 12.8 s with only 64 lists kept
    (each append then read its list again: the record keeps 1,024, at most 4M characters);
    an `llength` of the growing element at each turn read the whole list (5,000 turns: 9.3 s);
    now the whole script below (8,000 of each, 2,000 dict lappends) takes ~2-4 s (before: minutes)."""
    script = tmp_path / "edits.sched"
    script.write_text(LONG_EDITS.format(n=8000))
    proc = subprocess.Popen([str(SCHED), str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, err.decode()
    assert out.split() == [b"8000", b"w", b"7999", b"8000", b"4", b"8000", b"2000", b"300"], out
    cpu = usage.ru_utime + usage.ru_stime
    assert cpu < 15, f"{cpu:.1f} s of CPU for 8,000 changes of each kind to long lists and dictionaries"
