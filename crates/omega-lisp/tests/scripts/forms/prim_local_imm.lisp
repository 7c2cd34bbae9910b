; `(OP local small-int)` (`PrimLI`; `-` has its own fast path) and float results returned
; by `PrimReturn`: integers, floats, an overflow, a non-number and a redefined `-` all give
; what the generic primitive gives
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (dec n) (- n 1))
(define (dec3 n) (- n -3))
(define (inc n) (+ n 1))
(println (dec 10) (dec -5) (dec3 4) (inc 41))
(println (dec 2.5) (dec3 0.5))
(println (err (lambda () (dec -9223372036854775808))))
(println (err (lambda () (dec3 9223372036854775806))))
(println (first (err (lambda () (dec "x")))))
(define (count n) (if (< n 1) 'done (count (- n 1))))
(println (count 100000))
; a float `PrimReturn` over a frame that keeps its callee below its arguments (`Call`)
(define (via f x) (+ 1 (f x)))
(println (via (lambda (x) (+ (* x 2) 0.5)) 1) (via (lambda (x) (- (* x 1.0) 0.75)) 1)
         (via (lambda (x) (* (+ x 1) 0.5)) 4))
(define (fibfp n) (if (< n 2.0) n (+ (fibfp (- n 1.0)) (fibfp (- n 2.0)))))
(println (fibfp 15.0))
; `-` redefined: the compiled (- n 1) calls the new definition
(define real- -)
(set! - (lambda (a b) (list 'minus a b)))
(println (dec 10) (dec 2.5))
(set! - real-)
(println (dec 10))
; expect-output: 9 -6 7 42
; expect-output: 1.5 3.5
; expect-output: (:overflow integer overflow in -)
; expect-output: (:overflow integer overflow in -)
; expect-output: :type-error
; expect-output: done
; expect-output: 3.5 1.25 3.5
; expect-output: 610.0
; expect-output: (minus 10 1) (minus 2.5 1)
; expect-output: 9
