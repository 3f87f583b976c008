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
