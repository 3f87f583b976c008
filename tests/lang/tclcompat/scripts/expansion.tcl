# {*} expansion of lists into words.
set opts {-nocase -all}
puts [regexp {*}$opts -inline {A} aAbA]
set cmd [list string repeat ab]
puts [{*}$cmd 3]
proc show args { return "[llength $args]: $args" }
puts [show {*}{a b} c {*}{} {*}[list d {e f}]]
set nums {3 1 2}
puts [lsort {*}{-integer -decreasing} $nums]
puts [list {*}"x y" z]
