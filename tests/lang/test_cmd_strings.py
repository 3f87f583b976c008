"""String commands (psched.lang.commands.strings): string, format, regexp, regsub.

Expected results were checked against Tcl 8.6 (tclsh); rows marked "differs" document a
deliberate difference.
"""

import re

import pytest

import psched
from psched.lang.args import index_of
from psched.lang.commands.strings import tcl_format
from psched.lang.patterns import glob_match
from psched.lang.tclregex import tcl_regex
from psched.lang.errors import SchedError


def run(script):
    return psched.Interp().eval(script)


STRING = [
    ("string length hello", "5"),
    ('string length ""', "0"),
    ("string index hello 1", "e"),
    ("string index hello end", "o"),
    ("string index hello end-1", "l"),
    ("string index hello 10", ""),
    ("string range hello 1 3", "ell"),
    ("string range hello 2 end", "llo"),
    ("string range hello -5 1", "he"),
    ("string range hello 3 1", ""),
    ("string match a*c abc", "1"),
    ("string match a?c abbc", "0"),
    ("string match {[a-c]x} bx", "1"),
    ("string match {[a-c]x} dx", "0"),
    ("string match -nocase A* abc", "1"),
    ("string match {a\\*} a*", "1"),
    ("string match {a\\*} ab", "0"),
    ("string match {[^a]} ^", "1"),  # Tcl has no negated sets in string match
    ('string trim "  hi  "', "hi"),
    ("string trim xxhixx x", "hi"),
    ('string trimleft "  hi  "', "hi  "),
    ('string trimright "  hi  "', "  hi"),
    ("string trimright abcba ab", "abc"),
    ("string toupper hello", "HELLO"),
    ("string tolower HeLLo", "hello"),
    ("string toupper hello 1 2", "hELlo"),
    ("string totitle hELLO", "Hello"),
    ("string first a banana", "1"),
    ("string first a banana 2", "3"),
    ("string first nan banana", "2"),
    ("string first z banana", "-1"),
    ('string first "" banana', "-1"),
    ("string last a banana", "5"),
    ("string last a banana 2", "1"),
    ("string last a banana 0", "-1"),
    ("string map {a 1 b 2} abcab", "12c12"),
    ("string map {abc X ab Y} abcab", "XY"),
    ("string map -nocase {A x} aAa", "xxx"),
    ("string map {} abc", "abc"),
    ('string map {"" x} abc', "abc"),
    ("string repeat ab 3", "ababab"),
    ("string repeat ab 0", ""),
    ("string compare abc abd", "-1"),
    ("string compare abd abc", "1"),
    ("string compare abc abc", "0"),
    ("string compare -nocase ABC abc", "0"),
    ("string compare -length 2 abc abd", "0"),
    ("string equal abc abc", "1"),
    ("string equal -nocase ABC abc", "1"),
    ("string equal abc abd", "0"),
    ("string reverse hello", "olleh"),
    ("string replace hello 1 2 XY", "hXYlo"),
    ("string replace hello 1 2", "hlo"),
    ("string cat a b c", "abc"),
    ("string len abc", "3"),  # unique prefixes of subcommands
    # string is
    ("string is int 12", "1"),
    ("string is integer -12", "1"),
    ("string is integer 0x1F", "1"),
    ("string is integer 1.5", "0"),
    ('string is integer ""', "1"),
    ('string is integer -strict ""', "0"),
    ("string is integer 99999999999", "0"),  # as Tcl 8.6: `integer` is magnitudes up to 2**32-1
    ("string is integer 4294967295", "1"),
    ("string is entier 99999999999", "1"),
    ("string is wideinteger 99999999999999999999", "0"),
    ("string is double 1.5e3", "1"),
    ("string is double abc", "0"),
    ("string is double 12", "1"),
    ("string is boolean true", "1"),
    ("string is boolean no", "1"),
    ("string is boolean 2", "0"),
    ("string is boolean 1", "1"),
    ("string is alpha abc", "1"),
    ("string is alpha ab1", "0"),
    ("string is alnum ab1", "1"),
    ("string is digit 123", "1"),
    ("string is digit 12a", "0"),
    ('string is space "  "', "1"),
    ("string is upper ABC", "1"),
    ("string is lower abc", "1"),
    ("string is xdigit 0fA", "1"),
    ("string is list {a b {c}}", "1"),
    ('string is list "a {b"', "0"),
    ("string is true yes", "1"),
    ("string is false off", "1"),
    ("string is digit -failindex i 12a4; set i", "2"),
]

FORMAT = [
    ("format %d 42", "42"),
    ("format %5d|%-5d|%05d 42 42 42", "   42|42   |00042"),
    ("format %+d 5", "+5"),
    ('format "% d" 5', " 5"),
    ("format %x 255", "ff"),
    ("format %X 255", "FF"),
    ("format %o 8", "10"),
    ("format %#x 255", "0xff"),
    ("format %#o 8", "010"),
    ("format %x -1", "ffffffffffffffff"),
    ("format %c 65", "A"),
    ("format %s hello", "hello"),
    ("format %10s hello", "     hello"),
    ("format %-10s| hello", "hello     |"),
    ("format %.2s hello", "he"),
    ("format %5.2s| abcdef", "   ab|"),
    ("format %f 3.14159", "3.141590"),
    ("format %.2f 3.14159", "3.14"),
    ("format %8.3f 3.14159", "   3.142"),
    ("format %-8.3f| 3.14159", "3.142   |"),
    ("format %e 12345.678", "1.234568e+04"),
    ("format %.2E 12345.678", "1.23E+04"),
    ("format %g 0.00001234", "1.234e-05"),
    ("format %g 123456789", "1.23457e+08"),
    ("format %G 0.00001234", "1.234E-05"),
    ("format %.3g 1234567", "1.23e+06"),
    ("format %%", "%"),
    ("format %5.1f%% 45.67", " 45.7%"),
    ("format %*d 5 42", "   42"),
    ("format %-*d| 5 42", "42   |"),
    ("format %*d -5 42", "42   "),
    ('format "%2\\$s %1\\$s" a b', "b a"),
    ("format %s%s a b", "ab"),
    ("format %i 12", "12"),
    ("format %u 12", "12"),
    ("format %b 5", "101"),
    ("format %.3d 5", "005"),
    ("format %f 1", "1.000000"),
    ("format %d 0x10", "16"),
    ("format %5c 65", "    A"),
    ('format %s ""', ""),
    ('format "%s is %d years" Bob 42', "Bob is 42 years"),
    ("format %.0f 2.5", "2"),
    ("format %.0f 3.5", "4"),
    ("format %g 100000", "100000"),
    ("format %g 1000000", "1e+06"),
    ("format %#g 1", "1.00000"),
    ("format {%-10s %6.2f%%} disk 93.456", "disk        93.46%"),
]

REGEXP = [
    ("regexp {a+} xaaay", "1"),
    ('regexp {(\\d+)-(\\d+)} "x 12-34 y" all a b; list $all $a $b', "12-34 12 34"),
    ('regexp -inline {(\\d+)-(\\d+)} "x 12-34 y"', "12-34 12 34"),
    ("regexp -all {a} banana", "3"),
    ("regexp -all -inline {a.} banana", "an an"),
    ("regexp -indices {a(n)} banana m s; list $m $s", "{1 2} {2 2}"),
    ("regexp -inline -indices {(x)?a} a", "{0 0} {-1 -1}"),
    ("regexp -nocase {HELLO} hello", "1"),
    ("regexp {^b} abc", "0"),
    ("regexp {c$} abc", "1"),
    ('regexp "c\\$" "abc\\n"', "0"),  # $ is the very end, as in Tcl
    ('regexp {a.c} "a\\nc"', "1"),  # . matches a newline, as in Tcl
    ('regexp -line {a.c} "a\\nc"', "0"),
    ('regexp -line {^b} "a\\nb"', "1"),
    ('regexp {\\mfoo\\M} "a foo b"', "1"),
    ('regexp {\\mfoo\\M} "afoob"', "0"),
    ("regexp {[[:digit:]]+} abc123 m; set m", "123"),
    ("regexp {[[:alpha:]]+} 123abc456 m; set m", "abc"),
    ("regexp -inline {[^[:alpha:]]+} abc123def", "123"),
    ("regexp -inline {(a)|(b)} b", "b {} b"),
    ("regexp -all -inline {x*} abc", "{} {} {}"),
    ("regexp -all -inline {a*} baaac", "{} aaa {}"),
    ("regexp -all -inline -indices {(?=c)} abcabc", "{2 1} {5 4}"),
    ("regexp -inline {***=a.b} xa.by", "a.b"),
    ("regexp -inline {(?i)ABC} xabcx", "abc"),
    ("regexp -inline {a{2,3}} caaaab", "aaa"),
    ("regexp -inline -start 2 {a} abaca", "a"),
    ("regexp -inline {\\x41\\u0042} xABx", "AB"),
    ("regexp -inline {[\\d]+} ab123", "123"),
    ('regexp -inline {\\w+\\s\\w+} "hello there world"', "{hello there}"),
    ("regexp {x(y)?} x m sub; list $m $sub", "x {}"),
    ("set m untouched; regexp {z} abc m; set m", "untouched"),
    ("regexp -- -x a-x", "1"),
    ("regsub {a} banana A", "bAnana"),
    ("regsub -all {a} banana A", "bAnAnA"),
    ("regsub -all {(\\w)(\\w)} abcd {\\2\\1}", "badc"),
    ("regsub {(b)(z)?} abc {[\\1|\\2|&|\\&|\\\\|\\n]}", "a[b||b|&|\\|\\n]c"),
    ("regsub -all {a*} baaac X", "XbXXcX"),
    ("regsub -all {x*} abc -", "-a-b-c-"),
    ("regsub -all {(?=c)} abcabc X", "abXcabXc"),
    ("regsub -nocase {A} xaz Y", "xYz"),
    ('regsub -all {[0-9]+} "a1b22c333" <&>', "a<1>b<22>c<333>"),
    ("list [regsub -all {a} banana A res] $res", "3 bAnAnA"),
    ("regsub {z} banana A", "banana"),
    ("regsub -start 2 {a} banana A", "banAna"),
    ("regsub -all {$} abc X", "abcX"),
    ("regsub -all {^} abc X", "Xabc"),
]


@pytest.mark.parametrize("script,expected", STRING + FORMAT + REGEXP)
def test_string_commands(script, expected):
    assert run(script) == expected


ERRORS = [
    ("string index abc foo", 'bad index "foo"'),
    ("string repeat a x", 'expected integer but got "x"'),
    ("string is foo 1", 'bad class "foo": must be alnum, alpha'),
    ("string bogus x", 'unknown subcommand "bogus": must be cat, compare'),
    ("string map {a} b", "char map list unbalanced"),
    ("string compare a", 'wrong # args: should be "string compare ?-nocase? ?-length int? string1 string2"'),
    ("string repeat x 1000000000000", "longer than"),
    ("format %d abc", 'expected integer but got "abc"'),
    ("format %d 1.5", 'expected integer but got "1.5"'),
    ("format %d", "not enough arguments for all format specifiers"),
    ("format %z 1", 'bad field specifier "z"'),
    ('format "%1\\$s %s" a b', 'cannot mix "%" and "%n$" conversion specifiers'),
    ('format "%3\\$s" a b', '"%n$" argument index out of range'),
    ("format %f abc", 'expected floating-point number but got "abc"'),
    ("format % 1", "format string ended in middle of field specifier"),
    ("format %", "not enough arguments for all format specifiers"),  # Tcl takes the argument first
    ("format %c -1", "character code -1 out of range"),  # differs: Tcl prints a replacement character
    ("format %99999999d 1", "field width or precision larger than"),
    ("regexp {(} a", "couldn't compile regular expression pattern"),
    ("regexp {[[:nope:]]} a", 'invalid character class "nope"'),
    ("regexp {[a} a", "brackets [] not balanced"),
    ("regexp -inline {a} b m", "regexp match variables not allowed when using -inline"),
    ("regexp -bogus a b", 'bad option "-bogus"'),
    ("regsub a b", "wrong # args"),
]


@pytest.mark.parametrize("script,message", ERRORS)
def test_string_errors(script, message):
    with pytest.raises(SchedError) as info:
        run(script)
    assert message in info.value.message


@pytest.mark.parametrize("text,length,expected", [
    ("0", 5, 0), ("end", 5, 4), ("end-1", 5, 3), ("end+1", 5, 5), ("1+2", 5, 3), ("4-1", 5, 3),
    ("-1", 5, -1), (" 2 ", 5, 2), ("0x2", 5, 2), ("end--1", 5, 5),
])
def test_index_of(text, length, expected):
    assert index_of(text, length) == expected


@pytest.mark.parametrize("pattern,text,expected", [
    ("*", "", True), ("a*b", "ab", True), ("a*b", "axxb", True), ("a*b", "axxbc", False),
    ("?", "", False), ("[abc]", "b", True), ("[a-c]", "d", False), ("[c-a]", "b", True),
    ("a\\?", "a?", True), ("a\\?", "ab", False), ("[", "[", False), ("*.log", "x.log", True),
    ("a.b", "axb", False), ("(x)", "(x)", True),
])
def test_glob_match(pattern, text, expected):
    assert glob_match(pattern, text) is expected


def test_tcl_regex_translations():
    assert tcl_regex("a$").pattern == r"a\Z"
    assert tcl_regex("a$", lineanchor=True).pattern == "a$"
    assert tcl_regex(r"\mx\M").search("a x b")
    assert tcl_regex("[[:alpha:]_]+").fullmatch("ab_c")
    assert not tcl_regex("[^[:alpha:]]").search("abc")
    assert tcl_regex(r"\B").fullmatch("\\")  # Tcl: \B is a backslash
    assert tcl_regex("(?i)abc").flags & re.I


def test_tcl_format_is_not_python_eval():
    # A format string with Python syntax is just text to us.
    assert tcl_format("%s {__import__('os')}", ["x"]) == "x {__import__('os')}"
    with pytest.raises(SchedError):
        tcl_format("%(name)s", [])
