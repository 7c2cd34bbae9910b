; Calling a continuation after its call/cc returned is an :unsupported error with a position.
(define k2 (call/cc (lambda (k) k)))
(define (again) (+ 1 (k2 1)))
(again)
; expect-error: :unsupported continuation re-entry is not supported
; expect-error-line:   at again (tests/scripts/scheme/callcc_reentry.lisp:3:22)
