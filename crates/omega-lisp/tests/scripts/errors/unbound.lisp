(define x 1)
(+ x undefined-thing)
; expect-error: :unbound unbound variable: undefined-thing
; expect-error-line:   at <top> (tests/scripts/errors/unbound.lisp:2:6)
