set ages {ann 31 bob 17 cy 45 di 12}
puts [dict filter $ages script {k v} {expr {$v >= 18}}]
puts [dict filter $ages key {[ab]*}]
puts [dict filter $ages value 1*]
puts [lsort [dict values $ages]]
set total 0
dict for {k v} $ages { incr total $v }
puts $total
puts [dict merge $ages {bob 18 ed 50}]
