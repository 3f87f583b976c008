# The file system through `file`, `glob` and `cd`, in a directory of its own (made and removed
# here): each command with its completion code and result. glob's order is the directory's, in
# tclsh as in sched: results are sorted before they are compared.
set base [file join [pwd] files-corpus]
file delete -force $base; file mkdir $base; cd $base
proc files_show {s} { set c [catch {uplevel #0 $s} r]; puts "$s => $c {$r}" }
proc files_touch {args} { foreach n $args { set f [open $n w]; puts -nonewline $f "data"; close $f } }
files_touch a.txt b.c .hid; file mkdir d/e sub
files_touch d/x.txt d/y.log d/e/z.txt
foreach s {
 {lsort [glob *]} {lsort [glob .*]} {lsort [glob */]} {lsort [glob -types d *]} {lsort [glob -types f *]} {lsort [glob {{a,b}.*}]}
 {glob nomatch*} {glob x y} {glob -nocomplain x} {lsort [glob -tails -directory d *]} {lsort [glob -directory d *]} {glob -tails *}
 {glob a.txt} {glob zz} {lsort [glob -types {f d} *]} {glob -directory} {glob -- -x} {glob -nocomplain} {lsort [glob d/*]} {glob d/e}
 {glob d/e/} {glob {d/[e]}} {glob {*\.txt}} {lsort [glob ./*]} {lsort [glob d//*]} {lsort [glob */*.txt]} {lsort [glob d/{x,y}.*]}
 {lsort [glob -dir d *.txt]} {lsort [glob -nocomplain -types f -directory d *]} {glob -bogus x} {lsort [glob -types hidden *]} {lsort [glob -types hidden .*]}
 {lsort [glob -types {f r} *]} {glob -types q *} {lsort [glob *{.txt,.c}]} {glob a\{b} {glob -nocomplain {a,b}} {lsort [glob d/*/*]} {lsort [glob -tails -directory d */*]} {glob -nocomplain /nonexist/*}
 {glob {a{.txt}}} {glob -nocomplain {x{}}} {glob -directory nodir *} {glob -nocomplain -directory nodir *} {lsort [glob {[ab]*}]} {glob {?.txt}}
 {file exists a.txt} {file exists nope} {file exists d} {file isfile a.txt} {file isfile d} {file isdirectory d} {file isdirectory a.txt}
 {file readable a.txt} {file writable a.txt} {file executable a.txt} {file executable d} {file size a.txt} {file size nope} {file type a.txt} {file type d}
 {file mtime nope} {expr {abs([file mtime a.txt] - [clock seconds]) < 100}} {file mtime a.txt 1000000000} {file mtime a.txt}
 {file mkdir a.txt} {file mkdir a.txt/q} {file mkdir m1/m2 m3} {lsort [glob -types d m*]} {file mkdir m1} {file delete d} {file delete nope} {file delete m3} {file exists m3}
 {file delete -force m1} {file exists m1} {file delete -bogus x} {file delete -- nope}
 {file rename a.txt b.c} {file rename a.txt a2.txt} {lsort [glob *.txt]} {file rename -force a2.txt b.c} {file exists a2.txt} {file rename b.c sub} {lsort [glob -tails -directory sub *]}
 {file rename nope x} {file copy nope x} {file copy sub/b.c c1} {file copy sub/b.c c1} {file copy -force sub/b.c c1} {file size c1}
 {file copy d d2} {lsort [glob d2/*]} {file copy c1 sub} {lsort [glob -tails -directory sub *]} {file copy c1 sub} {file rename c1 d2 sub}
 {file rename -force c1 sub} {lsort [glob -tails -directory sub *]} {file copy a b c} 
 {file delete sub/c1 sub/b.c} {file delete sub} {file exists sub} {file normalize d/../d/e} {file tail [pwd]} {cd nope} {cd d; file tail [pwd]} {cd ..; file tail [pwd]}
 {file channels nothing*}
 {exec ln -s d/e lnk} {file tail [file normalize lnk/..]} {file tail [file normalize lnk]} {file tail [file normalize ./lnk/.]} {file type lnk}
 {lsort [glob -types l *]} {file isdirectory lnk} {file delete lnk} {file exists d/e}
} { files_show $s }
cd $base/..; file delete -force $base
file exists $base
