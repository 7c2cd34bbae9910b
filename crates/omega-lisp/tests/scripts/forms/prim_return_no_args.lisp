; a function of no arguments whose body is one arithmetic primitive (`PrimReturn`) returns into
; the slot its first operand used (a frame called by `CallGlobal` has no callee slot): the
; result must stay on the stack, for integers and floats, in every call position (this
; panicked the VM: found by the eval_async fuzzer)
(define a 1)
(define fa 1.5)
(define (b) (+ a 1))
(define (c) (- a 1))
(define (d) (* fa 2))
(define (e) (+ 1 a))
(println (b) (c) (d) (e))
(println (list 1 2 (b)) (list (d)) (list (b) (c) (d) (e)))
(define (twice) (+ (b) (b)))
(println (twice) (let ((f b)) (list (f) (f))) (map (lambda (x) (+ x (b))) '(1 2)))
(define big 4611686018427387904)
(define (over) (+ big big))
(println (try (over) (catch e (error-kind e))))
; expect-output: 2 0 3.0 2
; expect-output: (1 2 2) (3.0) (2 0 3.0 2)
; expect-output: 4 (2 2) (3 4)
; expect-output: :overflow
