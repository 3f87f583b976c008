# Parsing lines with scan and regexp.
set lines {"2026-12-06 10:20:30 ok 15" "2026-12-07 01:02:03 fail 7" "garbage"}
foreach line $lines {
    if {[scan $line "%d-%d-%d %d:%d:%d %s %d" y mo d h mi s status n] == 8} {
        puts "$y/$mo/$d [expr {$h*3600 + $mi*60 + $s}] $status [expr {$n * 2}]"
    } else {
        puts "unparsed: $line"
    }
}
foreach line $lines {
    if {[regexp {^(\S+) (\S+) (\w+)} $line -> date time status]} { puts "$status on $date" }
}
puts [scan "ff 0x10 077" "%x %x %o"]
