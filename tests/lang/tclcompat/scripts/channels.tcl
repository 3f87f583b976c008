# Channels: open, puts, gets, read, eof, seek, tell, close, in a file made and removed here.
# Text as tclsh writes and reads it: UTF-8, and lines ended by \n, \r\n or \r.
set dir [file join [pwd] channels-corpus]
file delete -force $dir; file mkdir $dir
set path [file join $dir t1.txt]
set f [open $path w]; puts $f "line one"; puts -nonewline $f "two\r\nthree\rfour"; close $f
set f [open $path]; set n 0
while {[gets $f line] >= 0} { puts "[incr n]: <$line> eof=[eof $f]" }
puts "end [gets $f x] <$x> [eof $f]"; close $f
set f [open $path r]; puts [string length [read $f]]; puts [eof $f]; close $f
set f [open $path r]; puts <[read $f 3]>[eof $f]; puts [tell $f]; seek $f 2; puts <[read $f 4]>
seek $f -3 end; puts <[read $f]>[eof $f]; seek $f 0; puts <[gets $f]>; seek $f 1 current; puts <[gets $f]>; close $f
set f [open $path w]; puts $f "a\nb\n"; close $f
set f [open $path]; puts <[read -nonewline $f]>; close $f
set f [open $path a]; puts $f "c"; close $f
set f [open $path]; puts [split [read $f] \n]; close $f
set f [open $path w]; puts $f "caf\u00e9 \u20ac"; close $f; puts [file size $path]
set f [open $path]; puts [gets $f]; close $f
set f [open $path {WRONLY APPEND}]; puts $f "x"; close $f; puts [file size $path]
set f [open $path {RDONLY}]; puts "[catch {puts $f x} e] [string map [list $f CH] $e]"; close $f
set f [open $path w]; puts "[catch {gets $f} e] [string map [list $f CH] $e]"; close $f
puts "[catch {gets $f} e] [string map [list $f CH] $e]"
set f [open $path {RDWR RDONLY}]; puts [gets $f]; close $f
set f [open [file join $dir t4.txt] {WRONLY CREAT EXCL} 0600]; close $f
puts [catch {open [file join $dir t4.txt] {WRONLY CREAT EXCL}} e]
set f [open $path w+]; puts $f hello; seek $f 0; puts [gets $f]; puts [tell $f]; close $f
set f [open $path]; puts "[catch {seek $f 0 middle} e] $e"; puts "[gets $f x] $x [gets $f x] [eof $f]"; close $f
set f [open $path]; puts "[catch {read $f -1} e] $e"; puts "[catch {read $f abc} e] $e"; close $f
set f [open $path]; puts [expr {$f in [file channels]}]; close $f; puts [expr {$f in [file channels]}]
puts [catch {open $dir w} e]
set f [open $path r+]; seek $f 0 end; puts $f more; flush $f; seek $f 0; puts [split [read $f] \n]; close $f
set f [open $path w]; puts -nonewline $f [string repeat x 100]; close $f
set f [open $path]; set got {}; while {![eof $f]} { lappend got [string length [read $f 30]] }; close $f; puts $got
file delete -force $dir
file exists $dir
