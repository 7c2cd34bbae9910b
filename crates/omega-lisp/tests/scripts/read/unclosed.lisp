(define (f x)
  (+ x 1)
; expect-error: :syntax unclosed.lisp:1:1: unclosed (
