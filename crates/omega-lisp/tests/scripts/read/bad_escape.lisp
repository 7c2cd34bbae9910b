"bad \q escape"
; expect-error: :syntax bad_escape.lisp:1:6: unknown escape \q in string
