# Corners: empty lists, append with no value, unset, info exists.
set e {}
puts [llength $e]
lappend e
puts "<$e>"
puts [catch {append nosuchvar} m]
puts $m
set a(1) x
puts [info exists a(1)]
unset a(1)
puts [info exists a(1)]
puts [array size a]
puts [expr {[string is integer ""] && ![string is integer -strict ""]}]
