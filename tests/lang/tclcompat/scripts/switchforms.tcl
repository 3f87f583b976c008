# switch in its forms: exact, glob, regexp with match variables, fall-through, default.
proc classify {s} {
    switch -regexp -matchvar m -- $s {
        {^(\d+)$} { return "number [lindex $m 1]" }
        {^([a-z]+)=(.*)$} { return "assign [lindex $m 1] to [lindex $m 2]" }
        {^-} { return option }
        default { return other }
    }
}
foreach s {42 key=value -v {hello world}} { puts [classify $s] }
foreach f {a.c b.h c.py Makefile} {
    switch -glob $f {
        *.c - *.h { puts "$f: C" }
        *.py { puts "$f: Python" }
        default { puts "$f: ?" }
    }
}
puts [switch -nocase HELLO hello {format matched} default {format no}]
