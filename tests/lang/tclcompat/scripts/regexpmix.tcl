# Leftmost-longest matching where Python's would stop at the first alternative.
puts [regexp -inline {in|int|integer} integers]
puts [regexp -inline {(\d+|\d+\.\d+) *(kb|kib|k)} "size 12.5 kib"]
puts [regsub -all {cat|category} "category cat" X]
puts [regexp -all -inline {\w+} "one two  three"]
puts [regsub -all {(\w)(\w*)} "hello big world" {\2\1ay}]
set n [regsub -all {\s+} "  a  b   c " " " out]
puts "$n <$out>"
