# A control structure written with uplevel: repeat N BODY.
proc repeat {n body} {
    for {set i 0} {$i < $n} {incr i} {
        set code [catch {uplevel 1 $body} result]
        switch $code {
            0 {}
            3 { return }
            4 { continue }
            default { return -code $code $result }
        }
    }
}
set total 0
repeat 5 { incr total 2 }
puts $total
set seen {}
repeat 10 { lappend seen x; if {[llength $seen] == 3} break }
puts $seen
proc user {} { repeat 3 { return early }; return late }
puts [user]
puts [catch {repeat 2 { error oops }} m]
puts $m
