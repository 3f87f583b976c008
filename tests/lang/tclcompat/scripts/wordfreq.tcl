# Word frequencies with a dict, sorted by count then word.
set text "the quick brown fox jumps over the lazy dog the fox"
set counts {}
foreach w [split $text] { dict incr counts $w }
set pairs {}
dict for {w n} $counts { lappend pairs [list $w $n] }
foreach p [lsort -index 0 [lsort -integer -decreasing -index 1 $pairs]] { puts $p }
puts [dict size $counts]
