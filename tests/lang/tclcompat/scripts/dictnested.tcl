# Nested dictionaries: set, get, update, with.
set db {}
dict set db alice age 30
dict set db alice langs {tcl c}
dict set db bob age 25
dict lappend db bob langs python
puts [dict get $db alice age]
puts [dict keys $db]
dict with db alice { incr age; lappend langs go }
puts [dict get $db alice]
dict update db bob b { dict set b age 26 }
puts [dict get $db bob age]
puts [dict exists $db carol]
puts [dict exists $db alice langs]
dict unset db alice langs
puts $db
puts [dict map {k v} $db {dict size $v}]
