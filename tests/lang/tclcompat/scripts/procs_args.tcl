# Proc arguments: defaults, args, info.
proc greet {name {greeting Hello} args} {
    set extra [expr {[llength $args] ? " ([join $args ,])" : ""}]
    return "$greeting, $name$extra"
}
puts [greet Ann]
puts [greet Bob Hi]
puts [greet Cy Yo a b]
puts [catch {greet} m]
puts [info args greet]
puts [info default greet greeting d]
puts $d
proc rec {n} { if {$n == 0} { return 0 }; expr {$n + [rec [expr {$n - 1}]]} }
puts [rec 50]
