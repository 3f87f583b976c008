set s "Hello, World"
puts [string range $s 0 4]
puts [string first o $s]
puts [string last o $s]
puts [string map {o 0 l 1} $s]
puts [string reverse $s]
puts [string repeat =- 5]
puts [string is alpha -failindex f $s]
puts $f
puts [format "%-8s|%8s|%08.3f" left right 3.14159]
puts [string compare abc abd]
puts [string equal -length 3 abcx abcy]
puts [split "a:b::c" :]
puts [join [lreverse [split $s ", "]] " "]
