"""pclient.seldom: a trouble said at most once a period per kind, with how often it came between."""

from pclient.seldom import Seldom


def test_said_once_a_period_with_the_times_in_between_counted_per_key():
    said = Seldom(600.0)
    assert said.due("a", 0.0) == (False, 0)       # the first time: said
    assert said.due("a", 10.0) is None            # within the period: counted
    assert said.due("b", 10.0) == (False, 0)      # another kind: its own
    assert said.due("a", 599.0) is None
    assert said.due("a", 600.0) == (True, 2)      # said again, with the 2 times in between
    assert said.due("a", 700.0) is None
    assert said.due("a", 1300.0) == (True, 1)


def test_a_different_text_is_said_at_once_and_forget_ends_the_trouble():
    said = Seldom(600.0)
    assert said.due("t", 0.0, "no such variable") == (False, 0)
    assert said.due("t", 5.0, "no such variable") is None
    assert said.due("t", 6.0, "wrong # args") == (False, 0)      # changed: said at once, counted anew
    assert said.due("t", 7.0, "wrong # args") is None
    assert said.due("t", 606.0, "wrong # args") == (True, 1)
    said.forget("t")
    assert said.due("t", 607.0, "wrong # args") == (False, 0)    # after the trouble was over: at once
