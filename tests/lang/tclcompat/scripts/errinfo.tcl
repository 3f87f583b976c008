# errorCode and catch options.
proc fail {} { error "it failed" "" {MY CODE} }
catch fail msg opts
puts $msg
puts [dict get $opts -code]
puts [dict get $opts -errorcode]
puts $errorCode
catch {throw {A B C} "thrown"} msg opts
puts [dict get $opts -errorcode]
catch {return -code error -errorcode {X Y} retmsg} msg opts
puts "$msg [dict get $opts -errorcode]"
proc level2 {} { return -level 2 -code ok skipped }
proc caller {} { level2; return "not skipped" }
puts [caller]
