; The same at the top of a body, where macro uses are expanded to find definitions.
(define-syntax again (syntax-rules () ((_) (again))))
(define (f) (again) 1)
; expect-error: :limit limit exceeded: macro expansion depth (1100), expanding again
