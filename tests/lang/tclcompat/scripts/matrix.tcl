# Lists of lists: a matrix transpose and product.
proc transpose {m} {
    set out {}
    set cols [llength [lindex $m 0]]
    for {set j 0} {$j < $cols} {incr j} {
        set row {}
        foreach r $m { lappend row [lindex $r $j] }
        lappend out $row
    }
    return $out
}
proc mul {a b} {
    set bt [transpose $b]
    set out {}
    foreach r $a {
        set row {}
        foreach c $bt {
            set s 0
            foreach x $r y $c { set s [expr {$s + $x * $y}] }
            lappend row $s
        }
        lappend out $row
    }
    return $out
}
set m {{1 2} {3 4} {5 6}}
puts [transpose $m]
puts [mul $m {{1 0 2} {0 1 3}}]
