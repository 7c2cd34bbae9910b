(define (f a b) a)
(f 1)
; expect-error: :arity-error f expects 2 arguments, got 1 argument
