# try with handlers and finally; errors with codes.
proc risky {what} {
    switch $what {
        ok { return fine }
        err { error "plain error" }
        code { throw {APP NOTFOUND} "no such thing" }
        brk { return -code break }
    }
}
foreach w {ok err code brk} {
    set log {}
    try {
        set r [risky $w]
        lappend log "result $r"
    } trap {APP} {msg opts} {
        lappend log "trapped [dict get $opts -errorcode]: $msg"
    } on error {msg} {
        lappend log "error: $msg"
    } on break {} {
        lappend log "break"
    } finally {
        lappend log "finally"
    }
    puts $log
}
