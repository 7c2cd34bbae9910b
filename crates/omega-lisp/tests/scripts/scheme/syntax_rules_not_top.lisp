; define-syntax where no definition may be.
(define (f x) (if x (define-syntax m (syntax-rules () ((_) 1))) 2))
; expect-error: :syntax define-syntax is only allowed at top level or at the start of a body
