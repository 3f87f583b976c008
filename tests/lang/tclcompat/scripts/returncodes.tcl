# return -code in all its forms, seen through catch.
foreach code {ok error return break continue 6} {
    proc p {} "return -code $code val"
    set r [catch p m o]
    puts "$code -> $r $m [dict get $o -code]"
}
proc p0 {} { return -level 0 -code break }
set r {}
foreach i {1 2 3} { lappend r $i; p0 }
puts $r
