# fconfigure: -translation (binary, lf, crlf), -encoding, -buffering, on files made and removed here.
set d [file join [pwd] fc-corpus]; file delete -force $d; file mkdir $d; set p [file join $d t.bin]
set f [open $p w]; fconfigure $f -translation binary; puts -nonewline $f "a\u00e9\r\nb\n"; close $f; puts [file size $p]
set f [open $p]; puts [string length [read $f]]; close $f
set f [open $p]; fconfigure $f -translation binary; set t [read $f]; puts [string length $t]; set hex ""; foreach c [split $t ""] { append hex [format %02x [scan $c %c]] }; puts $hex; close $f
set f [open $p]; puts [fconfigure $f]; puts [fconfigure $f -translation]; puts [fconfigure $f -encoding]; fconfigure $f -translation lf; puts [string map {\r <CR>} [gets $f]]; close $f
set f [open $p]; fconfigure $f -encoding binary; puts [string length [gets $f]]; close $f
set f [open $p]; gets $f; fconfigure $f -translation binary; puts [string length [read $f]]; close $f
set f [open $p w]; fconfigure $f -translation crlf; puts $f "x"; puts $f "y"; close $f; puts [file size $p]
set f [open $p]; fconfigure $f -translation crlf; puts [gets $f]|[gets $f]|[gets $f]|[eof $f]; close $f
set f [open $p]; fconfigure $f -translation binary; puts [string length [read $f]]; close $f
set f [open $p r+]; puts [fconfigure $f -translation]; fconfigure $f -translation {auto crlf}; puts [fconfigure $f -translation]; close $f
set f [open $p w]; fconfigure $f -encoding iso8859-1; puts -nonewline $f "\u00e9"; close $f; puts [file size $p]
set f [open $p]; puts "[catch {fconfigure $f -translation q} e] $e"; puts "[catch {fconfigure $f -encoding nosuchenc} e] $e"
puts "[catch {fconfigure $f -bogus 1} e] $e"; puts "[catch {fconfigure $f -translation lf -encoding} e] $e"
puts [fconfigure $f -buffering]; fconfigure $f -buffering line; puts [fconfigure $f -buffering]; puts [fconfigure $f -blocking]; close $f
set f [open $p w]; fconfigure $f -buffering none; puts -nonewline $f abc; puts [file size $p]; close $f
set f [open $p w]; fconfigure $f -buffering line; puts -nonewline $f abc; puts [file size $p]; puts $f ""; puts [file size $p]; close $f
file delete -force $d
