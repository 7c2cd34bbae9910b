; the uncaught error report of SPEC 6.5
(define (add-one x)
  (+ x "a"))

(define (twice x) (* 2 (add-one x)))

(twice 1)
; expect-error: :type-error
; expect-error-line: error[:type-error]: + expects numbers, got "a" (a string)
; expect-error-line:   at add-one (tests/scripts/errors/stack_trace.lisp:3:3)
; expect-error-line:   at twice (tests/scripts/errors/stack_trace.lisp:5:24)
; expect-error-line:   at <top> (tests/scripts/errors/stack_trace.lisp:7:1)
