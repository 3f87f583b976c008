"""Queues (psched.lang.commands.queues): FIFO order, -uniq with and without -key, -var loops, errors,
and that -uniq does not scan the queue."""

import time

import pytest

import psched
from psched.lang.commands.queues import WorkQueue, line_key
from psched.lang.errors import SchedError


def run(script):
    return psched.Interp().eval(script)


CASES = [
    ("queueinit q", ""),
    ("queuepush q a", "1"),  # push creates a missing queue and returns the new size
    ("queuepush q a; queuepush q b", "2"),
    ("queuepush q a; queuepush q b; queuepop q", "a"),  # FIFO
    ("queuepush q a; queuepush q b; queuepop q; queuelist q", "b"),
    ("queueinit q; queuepop q", ""),
    ("queueinit q; list [queuepop q -var v] $v", "0 {}"),
    ("queuepush q x; list [queuepop q -var v] $v", "1 x"),
    ("queuepush q a; queuepush q -uniq a; queuepush q -uniq b; queuelist q", "a b"),
    ("queuepush q a; queuepush q -uniq a", "1"),  # skipped: the size is unchanged
    # -key counts words from 0, as Pan-STARRS scripts do: -key 0 is the first word
    ('queuepush q -uniq -key 0 "h1 job1"; queuepush q -uniq -key 0 "h1 job2"; queuepush q -uniq -key 0 "h2 job3"; queuelist q',
     "{h1 job1} {h2 job3}"),
    ('queuepush q -uniq -key 1 "a x"; queuepush q -uniq -key 1 "b x"; queuepush q -uniq -key 1 "c y"; queuesize q', "2"),
    ('queuepush q -uniq -key 2 "a b"; queuepush q -uniq -key 2 "c"; queuesize q', "1"),  # both keys are ""
    ('queuepush q -key 0 -uniq "a b"; queuepush q -uniq -key 0 "a c"; queuesize q', "1"),
    # several columns joined: the key is those words together
    ('queuepush q -uniq -key 1:2:4 "a b c d e"; queuepush q -uniq -key 1:2:4 "x b c y e"; queuesize q', "1"),
    ('queuepush q -uniq -key 1:2:4 "a b c d e"; queuepush q -uniq -key 1:2:4 "a b c d f"; queuesize q', "2"),
    ('queuepush q -uniq -key 0:1 "a b"; queuepush q -uniq -key 0:1 "a  b x"; queuepush q -uniq -key 0:1 "a c"; queuesize q', "2"),
    ('queuepush q -uniq -key 3:0 "a b"; queuepush q -uniq -key 3:0 "a c"; queuesize q', "1"),  # ("", "a") twice
    # a popped line no longer blocks its key
    ("queuepush q -uniq a; queuepop q; queuepush q -uniq a", "1"),
    ("queuepush q a; queuepush q b; queuesize q", "2"),
    ("queuepush q a; queuesize q -var n; set n", "1"),
    ("queuepush q {with space}; queuepush q {x}; queuelist q", "{with space} x"),
    ("queueinit q; queuelist q", ""),
    ("queuepush q a; queueinit q; queuesize q", "0"),  # init empties
    ("queuepush q a; queuedelete q; info exists x", "0"),
    ("queuepush b 1; queuepush a 1; queuepush c 1; queuenames", "a b c"),
    ("queuepush job1 1; queuepush job2 1; queuepush x 1; queuenames job*", "job1 job2"),
    ("queuepush q -- -uniq; queuelist q", "-uniq"),
    ("queuepush q -uniq; queuelist q", "-uniq"),  # the last word is always the line
    # the loop style the -var form is for
    ("foreach x {a b c} {queuepush q $x}; set out {}; while {[queuepop q -var line]} {append out $line}; set out", "abc"),
    ("foreach x {1 2 3} {queuepush q $x}; set s 0; while {[queuesize q] > 0} {incr s [queuepop q]}; set s", "6"),
]


@pytest.mark.parametrize("script,expected", CASES)
def test_queues(script, expected):
    assert run(script) == expected


ERRORS = [
    ("queuepop nosuch", 'queue "nosuch" does not exist'),
    ("queuesize nosuch", 'queue "nosuch" does not exist'),
    ("queuelist nosuch", 'queue "nosuch" does not exist'),
    ("queuedelete nosuch", 'queue "nosuch" does not exist'),
    ("queuepush q -key 1 a", "-key only makes sense with -uniq"),
    ("queuepush q -uniq -key -1 a", "-key wants word numbers from 0 (0 is the first word)"),
    ("queuepush q -uniq -key x a", '-key wants word numbers from 0, joined by ":" (0, 2, 1:2:4), not "x"'),
    ("queuepush q -uniq -key 1::2 a", 'not "1::2"'),
    ("queuepush q -bogus a", 'bad option "-bogus": must be -uniq or -key N[:N...]'),
    ("queueinit q; queuepop q -var", 'wrong # args: should be "queuepop name ?-var varName?"'),
    ("queueinit q; queuepop q -bar v", 'wrong # args: should be "queuepop name ?-var varName?"'),
    ("queuepush q", 'wrong # args: should be "queuepush name ?-uniq? ?-key n[:n...]? line"'),
    ("queuepush q -uniq -key 1 -uniq a b", "wrong # args"),
]


@pytest.mark.parametrize("script,message", ERRORS)
def test_queue_errors(script, message):
    with pytest.raises(SchedError) as info:
        run(script)
    assert message in info.value.message


def test_queues_live_in_interp_queues():
    interp = psched.Interp()
    interp.eval("queuepush q a; queuepush q b")
    assert list(interp.queues["q"]) == ["a", "b"]
    assert isinstance(interp.queues["q"], WorkQueue)


def test_a_plain_list_put_by_other_code_is_adopted():
    interp = psched.Interp()
    interp.queues["out"] = ["l1", "l2", "l1"]  # e.g. the stdout lines of a job
    assert interp.eval("queuepush out -uniq l2") == "3"
    assert interp.eval("queuepop out") == "l1"
    assert interp.eval("queuesize out") == "2"


def test_plain_deque_changes_keep_uniq_right():
    q = WorkQueue()
    assert q.push("a", uniq=True)
    q.append("b")  # a plain change: the key counts are dropped and rebuilt
    assert not q.push("b", uniq=True)
    assert q.pop(0) == "a"
    assert q.push("a", uniq=True)
    del q[0]
    assert q.push("b", uniq=True)
    assert list(q) == ["a", "b"]


@pytest.mark.parametrize("line,key,expected", [
    ("a b c", None, "a b c"), ("a b c", (0,), ("a",)), ("a  b\tc", (2,), ("c",)), ("a", (1,), ("",)), ("", (0,), ("",)),
    ("a b c d e", (1, 2, 4), ("b", "c", "e")), ("a b", (3, 0), ("", "a")),
])
def test_line_key(line, key, expected):
    assert line_key(line, key) == expected


def test_uniq_does_not_scan_the_queue():
    """-uniq on a queue of 100,000 lines costs about what it costs on a short one."""
    big, small = WorkQueue(), WorkQueue()
    for i in range(100_000):
        big.push(f"host{i} job", uniq=True, key=(0,))
    small.push("host0 job", uniq=True, key=(0,))

    def cost(q):
        start = time.perf_counter()
        for _ in range(2000):
            q.push("host0 again", uniq=True, key=(0,))  # always a duplicate
        return time.perf_counter() - start

    cost(small)
    assert cost(big) < 20 * cost(small) + 0.01
    assert len(big) == 100_000
