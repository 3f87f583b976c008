# append and lappend grow a variable in place: no other value may change, ever (Tcl's value semantics).
set b {x y}
set a $b
lappend a z
puts "$a | $b"
set s abc
set t $s
append t def
puts "$s | $t"
# a result kept from an earlier lappend stays what it was
set l {}
set kept [lappend l 1]
lappend l 2
set kept2 [lappend l 3]
lappend l 4
puts "$kept | $kept2 | $l"
# twice in a row in one body, and read between appends
set m {}
for {set i 0} {$i < 50} {incr i} { lappend m $i; lappend m "w $i" }
puts [llength $m]
puts [lrange $m 0 5]
set r {}
for {set i 0} {$i < 30} {incr i} { lappend r $i; set copy $r; append r2 $i; set c2 $r2 }
puts "$copy | $r | $c2"
# a value used as a dict key or compared, then grown
set k {p q}
set d [dict create $k 1]
lappend k r
puts "[dict keys $d] | $k"
# through global and upvar
set g {}
proc addg {v} { global g; lappend g $v; append ::gs $v }
proc addu {name v} { upvar 1 $name x; lappend x $v }
addg 1; addg 2; addu g 3
set before $g
addu g 4
puts "$before | $g | $gs"
# non-canonical text is written canonical by lappend, kept as it is by append
set n "  a   {b}  c "
lappend n d
puts "<$n>"
set n2 "  a   {b}  c "
append n2 d
puts "<$n2>"
# append after lappend, lappend after append
set la {}
lappend la a b
append la " c"
lappend la {d e}
puts "$la | [llength $la]"
# elements that end in an escaped blank or start with #
set e {}
lappend e "\{ "
lappend e x
lappend e #h
puts "$e | [llength $e] | [lindex $e 0]|"
set h {}
lappend h #first second
puts $h
# a broken list is refused and left as it was
set bad "a \{b"
puts [catch {lappend bad c} msg]
puts "$msg | $bad"
# arrays: elements grow too
lappend arr(k) 1
lappend arr(k) 2 {3 4}
append arr(s) a b
append arr(s) c
puts "$arr(k) | $arr(s)"
# lappend with no value; append with no value
lappend fresh
puts "<$fresh> [info exists fresh]"
puts [catch {append missing} msg2]
puts $msg2
# an array is not a scalar
array set ar {x 1}
puts [catch {lappend ar v} msg3]
puts $msg3
puts [catch {append ar v} msg4]
puts $msg4
# unset, then grow again; set over a grown variable
unset l
lappend l again
set m short
append m er
puts "$l $m"
# incr and string commands on a grown value
set num 1
append num 2
incr num
puts $num
set words {}
foreach w {the quick brown fox} { lappend words [string toupper $w] }
puts [join $words -]
# growing through upvar to an array element: the array still hands out strings
proc growel {} { upvar arr(u) x; lappend x 1; lappend x 2; append x 3 }
growel
puts [lsort [array get arr u]]
proc growel2 {} { upvar arr(w) z; growel3 }
proc growel3 {} { upvar z w; lappend w p; lappend w {q r} }
growel2
puts [array get arr w]
# long lists (over a thousand characters): lappend to an array element, lset, and copies of them
for {set i 0} {$i < 300} {incr i} { lappend big(k) "item $i" }
lappend big(k) {} # {a b} \{ "q\"" {$x}
set copy $big(k)
lappend big(k) last
puts "[llength $copy] [llength $big(k)] [lindex $big(k) end-1] [lindex $copy end]"
puts [string range $big(k) end-60 end]
set long {}
for {set i 0} {$i < 300} {incr i} { lappend long "w $i" }
set before $long
lset long 0 {#first}
lset long 5 {}
lset long end {x {y} z}
lset long 300 added
lset long end-1 {a\b}
puts "[string range $long 0 40] ... [string range $long end-40 end]"
puts "[lindex $before 0] [llength $before] [llength $long]"
puts [catch {lset long 302 x} msg5]
puts $msg5
lset long 1 again
puts [lrange $long 0 2]
# a long array element not written by lappend: read as a list once, then written canonical
set big(raw) "  [string repeat {a  b } 200]  "
lappend big(raw) end
puts "[llength $big(raw)] [string length $big(raw)] [string range $big(raw) 0 9]"
# long dictionaries changed one key at a time: set, append, lappend, incr; copies keep their value
dict set dd {#k} first
for {set i 0} {$i < 200} {incr i} { dict set dd k$i "v $i" }
set dcopy $dd
dict set dd k5 {}
dict set dd k7 {a {b} c}
dict append dd k8 "+more"
dict lappend dd k9 x {y z}
dict incr dd n
dict incr dd n 41
dict set dd {#k} again
dict set dd new\{ value
puts "[dict size $dcopy] [dict size $dd] [dict get $dd k7] [dict get $dd n] [dict get $dcopy k5]"
puts "[string range $dd 0 50] ... [string range $dd end-50 end]"
puts [catch {dict incr dd k1} msg6]
puts $msg6
puts "[dict get $dd k1] [dict get $dd k9]"
for {set i 0} {$i < 300} {incr i} { dict lappend dl k "item $i" }
dict lappend dl k {} {#}
puts "[llength [dict get $dl k]] [string range $dl end-30 end]"
unset dd
dict set dd x 1
puts $dd
