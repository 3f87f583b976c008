# A stack kept in the caller's variable through upvar.
proc push {stackVar value} { upvar 1 $stackVar s; lappend s $value; return [llength $s] }
proc pop {stackVar} {
    upvar 1 $stackVar s
    if {![llength $s]} { error "stack empty" }
    set top [lindex $s end]
    set s [lrange $s 0 end-1]
    return $top
}
set st {}
push st a; push st b; push st {c d}
puts [pop st]
puts [pop st]
puts $st
pop st
puts [catch {pop st} msg]
puts $msg
