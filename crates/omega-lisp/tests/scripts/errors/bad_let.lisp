(define ok 1)
(let ((x)) x)
; expect-error: :syntax tests/scripts/errors/bad_let.lisp:2:7: let: each binding must be (name value)
