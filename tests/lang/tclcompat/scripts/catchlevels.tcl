# catch at several levels, with break and continue passing through procs.
proc body {i} {
    if {$i == 2} { return -code continue }
    if {$i == 4} { return -code break }
    return $i
}
set r {}
foreach i {1 2 3 4 5} { lappend r [body $i] }
puts $r
set r [catch {foreach i {1 2} { error "in loop $i" }} m]
puts "$r $m"
puts [catch {catch {error inner}; error outer} m]
puts $m
