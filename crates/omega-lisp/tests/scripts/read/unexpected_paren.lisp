(+ 1 2))
; expect-error: :syntax unexpected_paren.lisp:1:8: unexpected )
