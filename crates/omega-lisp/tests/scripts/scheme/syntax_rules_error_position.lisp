; A runtime error in expanded code points at the macro use.
(define-syntax inc (syntax-rules () ((_ x) (+ x 1))))
(define (g v)
  (inc v))
(g "a")
; expect-error: :type-error + expects numbers, got "a" (a string)
; expect-error-line:   at g (tests/scripts/scheme/syntax_rules_error_position.lisp:4:3)
