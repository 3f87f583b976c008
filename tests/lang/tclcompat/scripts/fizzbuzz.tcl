for {set i 1} {$i <= 15} {incr i} {
    switch -- [expr {($i % 3 == 0) + 2 * ($i % 5 == 0)}] {
        1 { puts Fizz }
        2 { puts Buzz }
        3 { puts FizzBuzz }
        default { puts $i }
    }
}
