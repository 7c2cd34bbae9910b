(define (deep n) (+ 1 (deep (+ n 1))))
(println (try (deep 0) (catch e (error-kind e))))
(deep 0)
; expect-output: :stack-overflow
; expect-error: :stack-overflow frames omitted
; expect-error-line: error[:stack-overflow]: stack overflow: call depth exceeds max_depth (100000)
