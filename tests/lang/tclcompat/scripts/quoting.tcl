# Lists of awkward strings survive a round trip.
set items [list "a b" "{" "}" "\\" "\"" {$x} {[cmd]} "" "#hash" "semi;colon" "tab\there"]
puts [llength $items]
foreach e $items { puts "<$e>" }
puts $items
set again [lrange $items 0 end]
puts [expr {$again eq $items}]
puts [join $items |]
