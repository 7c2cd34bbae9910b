(if)
; expect-error: :syntax bad_if.lisp:1:1: if expects (if test then [else])
