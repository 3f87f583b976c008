# The string differences the issue listed, now as Tcl has them.
puts [string toupper "straße"]
puts [string length [string toupper "straße"]]
puts [string totitle "ßtraße"]
puts [string match {[a} a]
puts [string is integer -strict -failindex where "12x"]
puts $where
puts [format %x 99999999999999999999]
puts [format %d 18446744073709551617]
puts [string trim "\u00a0 padded \u3000"]
set l "a   b"
lappend l c
puts $l
