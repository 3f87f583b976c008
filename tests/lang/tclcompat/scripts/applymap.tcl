# apply as a map function; lambdas in variables.
proc map {lambda list} {
    set out {}
    foreach e $list { lappend out [apply $lambda $e] }
    return $out
}
puts [map {x {expr {$x * $x}}} {1 2 3 4}]
puts [map {s {string toupper $s}} {a bc def}]
set add {{a b} {expr {$a + $b}}}
puts [apply $add 2 3]
proc fold {lambda acc list} { foreach e $list { set acc [apply $lambda $acc $e] }; return $acc }
puts [fold $add 0 {1 2 3 4 5}]
puts [fold {{a b} {string cat $b $a}} "" {a b c}]
