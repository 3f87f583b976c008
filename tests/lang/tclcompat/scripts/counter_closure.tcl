# Counters kept in a global array through upvar #0.
proc counter {name} {
    upvar #0 counters($name) c
    if {![info exists c]} { set c 0 }
    incr c
}
counter a; counter a; counter b
puts [counter a]
puts [lsort [array names counters]]
