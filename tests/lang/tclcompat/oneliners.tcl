# One-liners for the differential test (tests/lang/test_tclcompat.py): each line runs in catch
# in tclsh and in sched, and what it returns and prints must be the same. A line that differs
# on purpose ends with `;# differs: ID`, ID listed in docs/language.md's Differences from Tcl.
#
# --- variables, substitution, quoting
set a 1; set b "x$a"; list $a $b
set arr(k) v; set arr(k)
set x 5; set y [expr {$x * 2}]; append y !; set y
set s "a\tb\nc"; string length $s
set n 0; incr n; incr n 10; incr n -3
unset -nocomplain nope; incr nope; set nope
set v {a {b c} d}; llength $v
set q "a \"b\" c"; llength $q
set w {$x [y]}; string length $w
subst {x=$x [expr {1+1}] \t.}
list "\U41" \U0041x [string length "\U1F600x"] "\UG" [subst {\U42}]
set x 5; subst -nocommands -novariables {$x[y]\t}
set x 5; subst -nocommands {$x $x(a) [set x]}
set x 5; subst -novariables {$x(a[set y 1])}
set x 5; subst -nobackslashes {\t$x\[}
subst -bogus x
subst foo bar
subst {a[break]b[set x 1]}
subst {a[continue]b}
subst {a[return -code break]b}
proc p {} {subst {a[return x]b}; return after}; p
subst {a[error boom]b}
set name arr; set ${name}(k)
set z [set x]; list $z $x
puts -nonewline hello; puts " world"
puts [list a b {c d}]
unset -nocomplain u; append u; set u
unset -nocomplain lst; lappend lst; set lst
set l "a  b"; lappend l c; set l
set l "  x  {y}  "; lappend l z; set l
set e {}; lappend e {} {}; llength $e
set x 1; unset x(1)
unset -nocomplain x; unset x(1)
array set ar {1 a}; unset ar(2)
set x 1; array set x {a b}
set x 1; array set x {}
set a(x) 1; incr a
set x 1; incr x(y)
set a(x) 1; dict set a k v
set a(x) 1; dict incr a k
proc g {} {global nga(b)}; g
proc g {} {global ::x; set x 2}; set x 1; g; set x
# --- {*} expansion
set l {a b c}; list x {*}$l y
list {*}{1 2} {*}{} {*}[list p q]
{*}{}
set e [{*}{}]; string length $e
set args {1 2 3}; expr [join $args +]
proc sum args {tcl::mathop::+ {*}$args}; list 1
proc three {a b c} {list $c $b $a}; three {*}{x y z}
set cmd {list a}; {*}$cmd b
llength [list {*}"a b" c]
# --- upvar and uplevel
proc incr2 v {upvar $v x; incr x 2}; set c 1; incr2 c; set c
proc setit {} {upvar 1 r local; set local 7}; setit; set r
proc deep {} {upvar #0 g gg; set gg deep}; proc mid {} deep; mid; set g
proc up2 {} {uplevel 1 {set upv 42}}; up2; set upv
proc a1 {} {set x a1; b1}; proc b1 {} {uplevel 1 {set x}}; a1
proc a2 {} {set y outer; b2}; proc b2 {} {upvar y yy; set yy changed}; a2
proc lvl {} {info level}; proc lvl2 {} lvl; list [lvl] [lvl2]
proc c3 {} {uplevel #0 {set top 3}}; c3; set top
proc arr1 {} {upvar myarr a; set a(k) 1; array size a}; arr1
proc exists1 {} {upvar nosuch n; info exists n}; exists1
proc cnt {} {uplevel 1 [list incr counter]}; set counter 0; cnt; cnt; set counter
upvar 1 x y
proc bad {} {upvar 5 x y}; bad
proc bad2 {} {uplevel 3 {set x}}; bad2
proc q1 {} {uplevel {set a}}; q1
proc self {} {set v 1; upvar 0 v w; set w 2; set v}; self
# --- switch
switch abc {abc {set r exact} default {set r none}}
switch -glob abc {a* {set r glob} default {set r none}}
switch -regexp abc {^b {set r 1} {^a.c$} {set r 2}}
switch -exact -nocase ABC {abc {set r nocase}}
switch x a {set r a} x {set r x}
switch x a - x - y {set r shared} z {set r z}
switch q a {set r a} default {set r dflt}
switch q a {set r a}
switch -- -x {-x {set r dash}}
switch -glob -- -x {-* {set r dashglob}}
switch -regexp -matchvar m abcd {(b)(c) {set m}}
switch -regexp -indexvar i abcd {(b)(c) {set i}}
switch -regexp -matchvar m -indexvar i xyz {(y) {list $m $i}}
set mv x; set iv x; switch -regexp -matchvar mv -indexvar iv xyz {(a) {set r a} default {list $mv $iv}}
set mv x; switch -regexp -matchvar mv xyz {(a) {set r a}}; set mv
switch default {default {set r literal}}
switch -glob {} {* {set r empty}}
switch a {a}
switch a {a -}
switch -foo a {a b}
switch -glob -exact a {a b}
switch -matchvar m a {a b}
switch ;# differs: usage-text
switch a ;# differs: block-forms
switch 3 {1 {expr 1} 2 {expr 2} 3 {expr 3}}
# --- dict
dict create a 1 b 2
dict create a 1 a 2
dict get {a 1 b 2} b
dict get {a {b {c deep}}} a b c
dict get {a 1} nope
dict get {a 1 b}
set d {}; dict set d x 1; dict set d y 2; set d
set d {a {b 1}}; dict set d a c 2; set d
set d {a 1 b 2}; dict unset d a; set d
dict exists {a 1} a
dict exists {a 1} b
dict exists {a {b 1}} a b
dict keys {a 1 b 2 c 3}
dict keys {apple 1 banana 2 avocado 3} a*
dict values {a 1 b 2}
dict size {a 1 b 2 c 3}
set r {}; dict for {k v} {a 1 b 2} {lappend r $k=$v}; set r
set r {}; dict for {k v} {a 1 b 2 c 3} {if {$k eq "b"} break; lappend r $k}; set r
dict map {k v} {a 1 b 2} {expr {$v * 10}}
dict filter {a 1 b 2 c 3} key a c
dict filter {a 1 b 2 c 3} value 2
dict filter {a 1 b 2 c 3} script {k v} {expr {$v != 2}}
dict merge {a 1 b 2} {b 3} {c 4}
dict replace {a 1 b 2} b 9 c 3
dict remove {a 1 b 2 c 3} b
set d {}; dict append d k foo bar; set d
set d {l {1 2}}; dict lappend d l 3 {4 5}; set d
set d {}; dict incr d n; dict incr d n 4; set d
set d {a 1 b 2}; dict update d a x {set x 100}; set d
set d {a 1 b 2}; dict with d {set a [expr {$a + $b}]}; set d
set d {o {p 1}}; dict with d o {incr p}; set d
unset -nocomplain nod; dict with nod {set x 1}
unset -nocomplain nod; dict update nod a x {set x 1}
set d {a 1}; dict with d {unset d}; info exists d
set d {a 1}; dict update d a x {unset d}; info exists d
set d {a {b 1}}; dict with d a {set d {a {}}; set b 5}; set d
set d {a 1 b 2}; dict with d {unset a; set c 3}; set d
dict for {k} {a 1} {}
dict filter {a 1} nope
dict incr
dict
dict nosuch x ;# differs: ensemble-error-text
dict size {a 1 b}
dict get {}
set d [dict create k {v w}]; dict get $d k
catch {dict get {a {b 1}} a c} m o; list $m [dict get $o -errorcode]
catch {dict get {a 1} a b} m o; list $m [dict get $o -errorcode]
try {dict get {a 1} b} trap {TCL LOOKUP DICT} {m} {set r trapped}
catch {lindex {a} x} m o; dict get $o -errorcode
catch {string index a end+x} m o; dict get $o -errorcode
dict map {k v} {a 1 b 2} {if {$k eq "b"} break; set v}
dict merge {a 1 a 2}
dict merge { a 1 } {}
dict merge {a 1} {a 1}
dict size "\{a"
dict size {{a}b c}
dict get {"a"b c} a
dict exists "\{" a
dict exists {a {b "\{"}} a b c
set d {}; dict incr d b 0x10; dict incr d c " 5"; set d
# --- try, throw, catch options, return options
try {set r ok} on ok {v} {set v}
try {error boom} on error {m} {set m}
try {error boom} on error {m o} {dict get $o -code}
try {throw {MY ERR} oops} trap {MY} {m o} {list $m [dict get $o -errorcode]}
try {throw {MY ERR} oops} trap {OTHER} {m} {set m} on error {m} {list generic $m}
try {set x 1} finally {set fin done}; set fin
try {error a} on error {} {error b} finally {set fin2 ran}
set r [catch {try {error a} finally {set fin3 ran}} m]; list $r $m $fin3
try {return -code break} on break {} {set r broke}
try {expr {1/0}} trap {ARITH DIVZERO} {m o} {dict get $o -errorcode}
try {error x} on error - on break {} {set r fellthrough}
try {list 1} on error {m} {set m}
try {continue} on continue {} {set r cont}
foreach i {1 2 3} {try {if {$i == 2} continue; lappend out $i} on error {} {}}; set out
try ;# differs: block-forms
try {error boom} foo
try {error boom} on nosuch {} {}
try {error boom} on error
throw {} boom
throw {A B} message
catch {throw {A B} msg} m o; dict get $o -errorcode
catch {error msg info CODE} m o; list [dict get $o -code] [dict get $o -errorcode] [dict get $o -errorinfo]
catch {set a 1} m o; set o
catch {return -code break x} m o; list $m $o
catch {return -level 2 x} m o; set o
catch {return -options {-code 5 -foo bar} x} m o; list [dict get $o -code] [dict get $o -foo] $m
catch {break} m o; set o
proc r5 {} {return -code 5 five}; list [catch r5 m] $m
proc rerr {} {return -code error -errorcode {E X} failed}; list [catch rerr m o] $m [dict get $o -errorcode]
proc rl2 {} {return -level 2 fromrl2}; proc outer2 {} {rl2; return notreached}; outer2
proc rbrk {} {return -code break}; set r {}; foreach i {1 2 3} {lappend r $i; rbrk}; set r
proc rcont {} {return -code continue}; set r {}; foreach i {1 2 3} {rcont; lappend r $i}; set r
return -code foo
return -level -1
return -level 0 direct
list [catch {return -level 0 -code error oops} m] $m
catch {error boom} m; set errorCode
catch {throw {P Q} x} m; set errorCode
catch {error boom} m; lindex [split $errorInfo \n] 0
error
error a b c d
catch {return -code error} m o; set o
catch {return -code return x} m o; set o
catch {return -level 2 -code return x} m o; set o
catch {return -level 0 -code return x} m o; list $m $o
proc p {} {return -code return x}; proc q {} {p; return no}; q
catch {} a b c
catch {lindex} m o; dict get $o -errorcode
catch {nosuchcmd} m o; dict get $o -errorcode
catch {set nosuchvar} m o; dict get $o -errorcode
catch {set nosuchar(x)} m o; dict get $o -errorcode
set ar2(y) 1; catch {set ar2(x)} m o; dict get $o -errorcode
try {nosuchcmd} trap {TCL LOOKUP COMMAND} {m} {set r trapped}
# --- apply
apply {{x y} {expr {$x + $y}}} 3 4
apply {{x {y 10}} {expr {$x * $y}}} 3
apply {{args} {llength $args}} a b c
apply {x {set x}} hi
apply {{x y} {}} 1
apply {x} 1
apply
set sq {x {expr {$x*$x}}}; list [apply $sq 3] [apply $sq 4]
apply {{} {set local 1; info exists local}}
# --- scan
scan "12 34" "%d %d"
scan "12 34" "%d %d" a b; list $a $b
scan abc %d
scan "" %d
scan "" %d x
scan 0x1f %x
scan ff %x
scan " 12 abc 3.5" "%d %s %f"
scan 12abc "%d%n%c"
scan "a-b" {%[a-z]-%s}
scan "hello world" {%[^ ] %s}
scan 3 %f
scan 1e3 %g
scan 017 %o
scan "x 5" "x%d"
scan "12 34" {%2$d %1$d}
scan abc %c%c%c
scan 12 %d%d
scan abcdef %3s%s
scan "1 2 3" "%d %*d %d"
scan %5 %%%d
scan 9999999999 %d
scan -5 %u
scan "1 2" "%d %d" a
scan abc %q
scan abc %1c
scan "10:20:30" "%d:%d:%d" h m s; list $h $m $s
list [scan 18446744073709551615 %d] [scan -18446744073709551615 %d] [scan 9223372036854775808 %d] [scan 18446744073709551615 %u] [scan ffffffffffffffff %x]
list [scan "-" %d] [scan "+" %f] [scan "-." %f] [scan "-x" %d] [scan "ab -" "ab %d"] [scan "1 -" "%d %d"]
scan "-" %d x
scan "12" %d y z
scan "1 2" "%1\$d %1\$d"
scan "1 2" "%1\$d %3\$d" a b
scan "1 2" "%3\$d %1\$d"
scan "1 2" "%d %*d" a b
scan abc %ls
scan abc {%l[a]}
scan 123 %zd
scan 99999 %hd
# --- regexp and regsub: Tcl's leftmost-longest
regexp -inline {a|ab} ab
regexp -inline {x(\d+|\d+\.\d+)} x3.25
regexp -inline {(.*?)(\d+)} abc123
regexp -inline {(.*?)x} aaxbx
regexp -inline {a*?} aaa
regexp -inline {(wee|week)(knights|night)} weeknights
regexp -inline {(a*)(ab)*b} aabb
regexp -inline {(a|ab)(c|bcd)(d*)} abcd ;# differs: regexp-submatch
regexp -all -inline {a*} baaac
regexp -all -inline {} abc
regexp -all {\d} a1b22c333
regexp -indices {b+} abbbc m; set m
regexp -nocase {ABC} xabcx
regexp {^(\w+)@(\w+)\.com$} me@host.com -> user host; list $user $host
regexp -line -all -inline {^\w+$} "ab\ncd\n12"
regexp -start 2 -inline {\w} abcd
regexp {[[:digit:]]+} abc123 m; set m
regexp {\mfoo\M} "a foo b"
regexp {(?i)abc} ABC
regexp {***=a.b} a.b
regexp {a{2,3}} caaaat m; set m
regexp {(} x
list [regexp -inline {[[:digit:]]+} "²٣4"] [regexp -inline {[[:punct:]]+} "a\$+!b"] [regexp -inline {[[:upper:]]+} "ⅣÀB"] [regexp -inline {[[:alpha:]]+} "e\u0301a"]
list [regexp -inline {\s+} "a\u00a0\u200bb"] [regexp -inline {[[:space:]]+} "a\x1cb"] [regexp -inline {\w+} "a_b‿c\u0301"] [regexp -inline {[^\s]+} " ab "]
list [regexp -nocase {[[:upper:]]} a] [regexp -nocase {[^[:upper:]]} a] [regexp -inline {[[:cntrl:]]+} "a\u00ad\ue000b"]
list [string wordend "a²b c" 0] [string wordstart "a‿b c" 2] [string wordend "é\u0301x" 0]
regexp -start end a abca
list [regexp {a{,2}} aaa] [regexp {a{,2}} "a{,2}"] [regexp {a{x}} "a{x}"] [regexp {a{}} "a{}"]
regexp {a{256}} a
regexp {x{2,1}} xx
regexp {\8} a
regexp {(?z)a} a
regexp -start end-1 a abca
regsub -start end a abca X
regsub -all {} abc -
regsub -all {x*} abc -
regsub -all {a*} baaac -
regsub -all {(\w+)@(\w+)} "me@a you@b" {\2:\1}
regsub {o} foo 0
regsub -all o foo 0
regsub -all {a|ab} abab X
regsub -all {[aeiou]} "hello world" {<&>}
regsub -all {\d+} "a1b22" {[\0]} out; set out
regsub -nocase -all A aAa x
# --- string commands and the listed bugs
string toupper straße
string tolower ǅ
string totitle ßa
string toupper ﬁx
string toupper abc 1 1
string tolower "ΑΣ ΟΔΟΣ"
string tolower "İx"
string equal -nocase "ΑΣ" "ας"
string compare -nocase "İ" "i"
lsort -nocase {b A İ i}
switch -nocase straße {STRASSE {set r match} default {set r no}}
string map -nocase {i X} "İiİ"
lsearch -exact -nocase {ΑΣ} ας
string match {[a} a
string match {[a} b
string match {a[bc} ab
string match {[a-} b
string match {[]a]} a
string is integer -failindex i 12x3; set i
string is integer -failindex i " 1 2"; set i
string is integer -failindex i "  "; set i
string is integer 4294967295
string is integer 4294967296
string is integer -4294967295
string is wide 18446744073709551615
string is wide 18446744073709551616
string is entier 99999999999999999999999
string is double -failindex i 1.5x; set i
string is alpha -failindex i ab1; set i
string is list -failindex i "a \{b"; set i
string is list -failindex i {a {b}c d}; set i
string is list -failindex i {x {y {z}}w}; set i
string is list -failindex i {a "b"c d}; set i
set r {}; for {set i 33} {$i < 127} {incr i} {set c [format %c $i]; if {[string is punct $c]} {append r $c}}; set r
set r {}; foreach c {§ ¶ « » ¿ ¡ € £ ° · – —} {append r [string is punct $c]}; set r
set r {}; foreach cls {alnum digit lower upper space control print wordchar} {set s $cls; foreach c [list ² ½ Ⅳ ⅳ ª ʰ Ⓐ ⓐ \x1c \u00a0 \u200b \u00ad \ue000 \u2028 ‿ ٣ É] {append s [string is $cls $c]}; lappend r $s}; set r
string is dict {a b}
string is a x
format %d 99999999999999999999
format %x 99999999999999999999
format %d -99999999999999999999
format %lld 99999999999999999999
format %o 99999999999999999999
format %x -1
format %hd 70000
format %u -1
format {%05s|%-05s|%0-5s|%05c|%-05c} ab ab ab 65 65
format {%-05d|%-+05d|%-05x|%-#06o|%05.3d|%05.3d|%-05.3x} 3 3 255 8 7 -7 255
format {%#x|%#b|%#.3x|%+.3d|% 05d|%+x|%05.1s} 0 0 255 5 3 5 abc
format {%-05.1f|%+05.1f|%05g} 3.14 3 3
format %
format %5
format %q
format %q 1
format %f NaN
lsort -real {nan 1}
format %c -1 ;# differs: format-char-range
string trim "\u00a0x\u2003"
string trim "\u3000x\u200b"
string trimleft "\u00a0x"
string trimright "x\ufeff"
string wordend "hello world" 1
string wordstart "hello world" 8
set r {}; for {set i 0} {$i < 5} {incr i; if {$i == 3} break} {lappend r $i}; set r
# --- control flow and codes
set r {}; foreach {a b} {1 2 3 4} {lappend r $b $a}; set r
set r {}; foreach a {1 2} b {x y z} {lappend r $a$b}; set r
set i 0; while {1} {if {[incr i] > 3} break}; set i
set r {}; for {set i 0} {$i < 6} {incr i} {if {$i % 2} continue; lappend r $i}; set r
if {0} {set r a} elseif {1} {set r b} else {set r c}
if 0 then {set r a} else {set r else}
proc f {n} {if {$n < 2} {return $n}; expr {[f [expr {$n-1}]] + [f [expr {$n-2}]]}}; f 15
proc dflt {a {b 2} args} {list $a $b $args}; list [dflt 1] [dflt 1 3] [dflt 1 3 4 5]
proc "a b" {} {return ab}; "a b"
proc "a b" {x} {}; "a b"
proc p {{a 1 2}} {}
proc p {{}} {}
proc p {{a(1)}} {}
proc p {a::b} {}
apply {{{a 1 2}} {}}
catch {break}
catch {continue}
catch {return x} m; set m
catch {nosuchcommand} m; set m
catch {set} m; set m ;# differs: usage-text
catch {expr {"a" + 1}} m; set m ;# differs: expr-error-text
eval {set e1 1; set e2 2}; list $e1 $e2
eval set e3 3
rename dflt dflt2; dflt2 z
info exists nosuchvariable
join {a b c} ,
split a,b,,c ,
lsort -integer {10 2 33 4}
lsort -decreasing {b a c}
lsearch -exact {a b c} c
lrange {a b c d} 1 end-1
lindex {a {b c} d} 1 0
lreplace {a b c d} 1 2 X
string map {ab X b Y} abcab
expr {2 ** 100}
expr {7 / 2}
expr {-7 / 2}
expr {-7 % 3}
expr {7.0 / 2}
expr {1 / 3.0}
expr {double(1) / 3}
expr {int(3.7)}
expr {round(-2.5)}
expr {"abc" < "abd"}
expr {"10" == 10.0}
expr {5 > 3 ? "yes" : "no"}
expr {1e300 * 1e10}
expr {nan}
set x NaN; expr {$x}
proc p {} {set x NaN; expr {$x}}; p
expr {1 ? nan : 0}
catch {expr {nan}} m o; dict get $o -errorcode
catch {expr {inf - inf}} m o; dict get $o -errorcode
expr {"nan" eq "nan"}
expr {srand(42)}; list [expr {rand()}] [expr {rand()}] [expr {int(rand()*100)}]
list [expr {srand(0)}] [expr {srand(-1)}] [expr {srand(1<<40)}] [expr {srand(99999999999999999999)}]
expr {0x10 + 010} ;# differs: octal-literals
expr {1 / 0}
expr {max()}
expr {abs()}
format %.3f 3.14159
format %5.1e 12345.678
format {%-4s|%4s|} ab cd
format %c 65
format %08.3f -3.5
format %+d 5
format {%s %s} a
# --- lists: lsort and lsearch options
lsort -stride 2 {b 1 a 2}
lsort -stride 2 -index 1 -integer {b 10 a 9 c 1}
lsort -stride 2 -decreasing {a 1 c 3 b 2}
lsort -stride 2 -unique {a 1 b 2 a 3}
lsort -stride 3 -index {1 0} {a {z q} 1 b {y p} 2}
lsort -stride 2 -index end {a 2 b 1}
lsort -stride 2 -command {string compare} {b 1 a 2}
lsort -stride 1 {a b}
lsort -stride 2 {a}
lsort -stride 2 -index 2 {a b}
lsort -indices -decreasing {c a b}
lsort -indices -unique {b a b}
lsort -indices -stride 2 -unique {a 1 b 2 a 3}
lsort -index -1 {{a b}}
lsort -index end+1 {{a b}}
lsort -bogus {a}
lsearch -bisect {a c e} d
lsearch -bisect -inline {a c e} 0
lsearch -bisect -decreasing -integer {5 3 1} 4
lsearch -bisect -index 1 {{x 1} {y 3}} 2
lsearch -bisect -all {a c e} d
lsearch -subindices -index 1 -all {{a 1} {b 2} {c 2}} 2
lsearch -subindices -index {end 0} {{a {1 2}}} 1
lsearch -subindices -all -inline -index 1 {{a 1} {b 2} {c 2}} 2
lsearch -subindices {a b} b
lsearch -index -1 {{a b}} a
lsearch -stride 2 {a 1 b 2} b
# --- clock (times in GMT and from a fixed base)
clock scan [clock format 1700000000 -gmt 1] -gmt 1
clock scan "Tue, 14 Nov 2023 22:13:20 +0000"
clock scan "Nov 14, 2023 10:00 pm" -gmt 1
clock scan "November 14, 2023" -gmt 1
clock scan "14 Nov 2023 10:00:00 UTC"
clock scan "Sept 14, 23" -gmt 1
clock scan "14-Nov-2023" -gmt 1
clock scan "Nov 14" -gmt 1 -base 1700000000
clock scan "20231114 10:00" -gmt 1
clock scan "Mon 2023-11-14" -gmt 1
clock scan "Thurs" -gmt 1 -base 1700000000
clock scan "Sunday 10:00" -gmt 1 -base 1700000000
clock scan "tomorrow 10:00" -gmt 1 -base 1700000000
clock scan "2023-11-30 tomorrow" -gmt 1
clock scan "yesterday" -gmt 1 -base 1700000000
clock scan "11/14/38" -gmt 1
clock scan "Nov 14 2023" -gmt 1 -base 1700000000 ;# differs: clock-scan
clock scan "Feb 30, 2023" -gmt 1 ;# differs: clock-scan
clock scan "2023-11-14 +2 hours" -gmt 1 ;# differs: clock-scan
clock scan "today" -gmt 1 -base 1700000000 ;# differs: clock-scan
clock format -62135596800 -gmt 1 -format %Y-%m-%d ;# differs: clock-scan
# --- exec (sh's own commands; the pid in an errorcode is taken out)
exec sh -c {echo o; exit 2}
exec sh -c {echo o; echo e >&2; exit 2}
exec sh -c {echo o; echo e >&2}
exec -keepnewline sh -c {printf "o\n\n"; echo e >&2}
exec sh -c {echo o; kill -KILL $$}
catch {exec sh -c {exit 3} | cat} m o; list $m [lreplace [dict get $o -errorcode] 1 1 PID] [lindex $::errorCode 2]
catch {exec sh -c {kill -TERM $$}} m o; list $m [lreplace [dict get $o -errorcode] 1 1 PID]
catch {exec sh -c {echo e >&2}} m o; list $m [dict get $o -errorcode]
# --- info
info hostname
list [info complete "set x \{"] [info complete "set x 1"] [info complete "puts \[a"] [info complete "a \}"]
file tail [info nameofexecutable] ;# differs: nameofexecutable

# --- file names (string work only: no file is read)
list [file join a b/ c] [file join a /b c] [file join a//b c] [file join "" a] [file join a ""] [file join a ~b] [file join a ./~b]
list [file split /a/b/c] [file split a//b/] [file split ~/x] [file split a/~b] [file split ""] [file split /]
list [file dirname a/b] [file dirname a] [file dirname /a] [file dirname /] [file dirname a/b/] [file dirname a//b] [file dirname ""]
list [file tail a/b/] [file tail /] [file tail a] [file tail ""] [file tail a/~b] [file tail x.tar.gz]
list [file rootname a/b.c] [file rootname a.b/c] [file rootname .bashrc] [file rootname a/.b] [file rootname x.tar.gz]
list [file extension .bashrc] [file extension a.b.c] [file extension a.b/c] [file extension a/.b] [file extension a.] [file extension noext]
file join
file isfile
file size
file dirname a b
file delete -bogus x
file copy onlyone ;# differs: usage-text
pwd x
gets
gets a b c
close nosuch
puts nosuch text
eof nosuch
flush nosuch
seek nosuch 0
tell nosuch
gets stdout
puts stdin x
flush stdin
open nosuch-file
open x q
open x w+x
open x {BOGUS}
open x {CREAT}
open x r 0600 more
file channels std*
file channels nothing*
flush stdout
glob -tails *
glob -directory
glob -bogus x
glob -types q *
glob -nocomplain
glob -nocomplain /nonexistent-dir/*
glob /nonexistent-dir/x*
glob -nocomplain {a,b}
glob -nocomplain a\{b
file size /nonexistent-dir/x
file mtime /nonexistent-dir/x
file type /nonexistent-dir/x
file delete /nonexistent-dir/x
cd /nonexistent-dir
list [file exists /nonexistent-dir] [file isfile /] [file isdirectory /] [file readable /nonexistent-dir] [file type /]
catch {open /nonexistent-dir/x} m o; list $m [dict get $o -errorcode]
catch {file size /nonexistent-dir/x} m o; list $m [dict get $o -errorcode]
catch {cd /nonexistent-dir} m o; list $m [dict get $o -errorcode]
catch {exec nosuchprog-xyz} m o; list $m [dict get $o -errorcode]
catch {glob /nonexistent-dir/*} m o; list $m [dict get $o -errorcode]
catch {source /nonexistent-dir/x} m o; list $m [dict get $o -errorcode]
catch {file mkdir /proc/x/y} m o; list $m [dict get $o -errorcode]
try {open /nonexistent-dir/x} trap {POSIX ENOENT} {m} {set r trapped}
set r [catch {open /} ch]; if {!$r} {close $ch}; set r ;# differs: open-directory

exec sleep 0 & ;# differs: exec-background
exec -ignorestderr sh -c "echo to-stderr >&2; echo out"
