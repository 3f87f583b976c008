"""List commands (psched.lang.commands.lists): results checked against Tcl 8.6 (tclsh), row by row."""

import pytest

import psched
from psched.lang.commands.lists import dictionary_compare
from psched.lang.errors import SchedError


def run(script):
    return psched.Interp().eval(script)


CASES = [
    # list, llength, lindex
    ('list a {b c} "" {d e}', "a {b c} {} {d e}"),
    ('list {a b} \\{ \\} {$x} {[y]} "a\\"b" {#x} x#', '{a b} \\{ \\} {$x} {[y]} a\\"b #x x#'),
    ("llength {a {b c} d}", "3"),
    ('llength ""', "0"),
    ("lindex {a {b c} d} 1", "b c"),
    ("lindex {a {b c} d} {1 0}", "b"),
    ("lindex {a {b c} d} 1 1", "c"),
    ("lindex {a b c} end", "c"),
    ("lindex {a b c} end-1", "b"),
    ("lindex {a b c} 0+1", "b"),
    ("lindex {a b c} 5", ""),
    ("lindex {a b c} -1", ""),
    ("lindex {a b c} end-5", ""),
    ("lindex {a b c}", "a b c"),
    # lrange, lreverse, linsert, lreplace
    ("lrange {a b c d e} 1 3", "b c d"),
    ("lrange {a b c d e} end-2 end", "c d e"),
    ("lrange {a b c d e} 3 1", ""),
    ("lrange {a b c d e} -5 100", "a b c d e"),
    ("lreverse {a {b c} d}", "d {b c} a"),
    ("linsert {a b c} 1 x y", "a x y b c"),
    ("linsert {a b c} end x", "a b c x"),
    ("linsert {a b c} end-1 x", "a b x c"),
    ("linsert {a b c} 10 x", "a b c x"),
    ("linsert {a b c} -3 x", "x a b c"),
    ("lreplace {a b c d} 1 2 x y z", "a x y z d"),
    ("lreplace {a b c d} 1 1", "a c d"),
    ("lreplace {a b c d} end end z", "a b c z"),
    ("lreplace {a b c d} 2 1 q", "a b q c d"),
    # lsearch
    ("lsearch {a b c} b", "1"),
    ("lsearch {a b c} z", "-1"),
    ("lsearch -exact {a* b} a*", "0"),
    ("lsearch {apple banana cherry} *an*", "1"),
    ("lsearch -all {a b a c a} a", "0 2 4"),
    ("lsearch -all -inline {apple banana avocado} a*", "apple avocado"),
    ("lsearch -inline {apple banana avocado} b*", "banana"),
    ("lsearch -not {a a b} a", "2"),
    ("lsearch -regexp {foo bar baz} {^b.z$}", "2"),
    ("lsearch -nocase {Foo Bar} bar", "1"),
    ("lsearch -nocase -exact {Foo Bar} bar", "1"),
    ("lsearch -index 1 {{a 1} {b 2} {c 3}} 2", "1"),
    ("lsearch -start 2 {a b a b} a", "2"),
    ("lsearch -all -not -inline {a b c d} {[ab]}", "c d"),
    ("lsearch -exact -integer {1 02 3} 2", "1"),
    ("lsearch {a b} -x", "-1"),  # a pattern may start with a dash: the last two words are positional
    # lsort
    ("lsort {c b a}", "a b c"),
    ("lsort -decreasing {c b a}", "c b a"),
    ("lsort -integer {10 9 100 -1}", "-1 9 10 100"),
    ("lsort -real {1.5 1e1 -2 0x10}", "-2 1.5 1e1 0x10"),
    ("lsort -dictionary {a10 a9 A1 b B2 x10y x9y a01}", "A1 a01 a9 a10 b B2 x9y x10y"),
    ("lsort -dictionary {abc ABC aBc Abc}", "ABC Abc aBc abc"),
    ("lsort -dictionary {a1b a01b a001b a1B}", "a1B a1b a01b a001b"),
    ("lsort -unique {c a b a c}", "a b c"),
    ("lsort -index 1 {{a 3} {b 1} {c 2}}", "{b 1} {c 2} {a 3}"),
    ("lsort -index end -integer -decreasing {{a 3} {b 10} {c 2}}", "{b 10} {a 3} {c 2}"),
    ("lsort -nocase {B a C}", "a B C"),
    ("lsort -unique -index 0 {{a 1} {b 2} {a 3}}", "{a 3} {b 2}"),
    ("lsort {}", ""),
    ("proc bylen {a b} {expr {[string length $a] - [string length $b]}}; lsort -command bylen {ccc a bb}", "a bb ccc"),
    # join, split, concat
    ("join {a b c} ,", "a,b,c"),
    ("join {a {b c} d}", "a b c d"),
    ("join {} ,", ""),
    ('split "a b  c"', "a b {} c"),
    ("split a,b,,c ,", "a b {} c"),
    ('split abc ""', "a b c"),
    ('split "a:b;c" :;', "a {b;c}"),  # the ; ends the command, as in Tcl
    ('split "a:b;c" {:;}', "a b c"),
    ('split "" ,', ""),
    ('split ",a," ,', "{} a {}"),
    ("concat { a b } {} {c  d }", "a b c  d"),
    ("concat", ""),
    ('concat a {} " " b', "a b"),
    # lassign, lrepeat, lset, lappend, lmap
    ("lassign {a b c d} x y", "c d"),
    ("lassign {a} x y; list $x $y", "a {}"),
    ("lrepeat 3 a b", "a b a b a b"),
    ("lrepeat 0 a", ""),
    ("set L {a b c}; lset L 1 X; set L", "a X c"),
    ("set L {a {b c} d}; lset L 1 0 X; set L", "a {X c} d"),
    ("set L {a b}; lset L 2 c; set L", "a b c"),
    ("set L {a b}; lset L {} X; set L", "X"),
    ("set L {}; lappend L a {b c}; set L", "a {b c}"),
    ('set L "a b"; lappend L c; set L', "a b c"),
    ("lappend L2 x; lappend L2 {#y}; set L2", "x #y"),
    ("lappend L3 {#y}; set L3", "{#y}"),
    ('set L "a {b c}"; lappend L d; lappend L {e f}; llength $L', "4"),
    ('set L "a "; lappend L b', "a b"),
    ("lappend A(k) 1; lappend A(k) 2; set A(k)", "1 2"),
    ("lmap v {1 2 3} {expr {$v * 2}}", "2 4 6"),
    ("lmap {a b} {1 2 3 4} {list $b $a}", "{2 1} {4 3}"),
    ("lmap v {1 2 3 4} {if {$v == 2} {continue}; if {$v == 4} {break}; set v}", "1 3"),
]


@pytest.mark.parametrize("script,expected", CASES)
def test_list_commands(script, expected):
    assert run(script) == expected


ERRORS = [
    ("lindex {a b c} foo", 'bad index "foo": must be integer?[+-]integer? or end?[+-]integer?'),
    ('lindex "a {b" 0', "unmatched open brace in list"),
    ('llength "a {b"', "unmatched open brace in list"),
    ("lsort -integer {1 a 2}", 'expected integer but got "a"'),
    ("lsort -foo {a}", 'bad option "-foo": must be -ascii, -command'),
    ("lsearch -foo {a} a", 'bad option "-foo": must be -all'),
    ("lsearch -index 3 {{a b}} a", 'element 3 missing from sublist "a b"'),
    ("lsort -index {a}", 'wrong # args: should be "lsort'),
    ("lsearch -start x {a} a", 'bad index "x"'),
    ("lset nosuch 0 x", 'can\'t read "nosuch": no such variable'),
    ("set L {a b}; lset L 5 x", "list index out of range"),
    ("lrepeat -1 a", 'bad count "-1": must be integer >= 0'),
    ("split", 'wrong # args: should be "split string ?splitChars?"'),
    ("join {a b} , x", 'wrong # args: should be "join list ?joinString?"'),
    ("lmap v {1 2}", 'wrong # args: should be "lmap'),
    ("lsort -command nosuchcmd {b a}", 'invalid command name "nosuchcmd"'),
    ("lrepeat 100000000 [string repeat x 100]", "longer than"),
    ('set L "a {b"; lappend L c', "unmatched open brace in list"),
]


@pytest.mark.parametrize("script,message", ERRORS)
def test_list_errors(script, message):
    with pytest.raises(SchedError) as info:
        run(script)
    assert message in info.value.message


def test_dictionary_compare_is_a_total_order_on_samples():
    words = ["a", "A", "a1", "a01", "a10", "a9", "b", "B2", "", "x10y", "x9y", "Z", "_"]
    for a in words:
        assert dictionary_compare(a, a) == 0
        for b in words:
            assert dictionary_compare(a, b) == -dictionary_compare(b, a) or (a == b)


def test_results_are_canonical_lists_that_read_back():
    interp = psched.Interp()
    interp.set_var("weird", "a{b")
    assert interp.eval("llength [list $weird {x y} {}]") == "3"
    assert interp.eval("lindex [list $weird {x y}] 0") == "a{b"
