# Loops with break and continue, nested, and codes out of procs.
set out {}
for {set i 0} {$i < 4} {incr i} {
    for {set j 0} {$j < 4} {incr j} {
        if {$j > $i} break
        if {($i + $j) % 2} continue
        lappend out $i$j
    }
}
puts $out
proc find {list x} {
    set k 0
    foreach e $list { if {$e eq $x} { return $k }; incr k }
    return -1
}
puts [find {a b c} c]
puts [find {a b c} z]
set n 0
while 1 { incr n; if {$n >= 10} break }
puts $n
