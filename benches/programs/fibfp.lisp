;; fibfp — doubly recursive Fibonacci on floats (r7rs-benchmarks "fibfp", transliterated).
(define (fibfp n)
  (if (< n 2.0)
      n
      (+ (fibfp (- n 1.0)) (fibfp (- n 2.0)))))
(define input 25.0)
(println (fibfp input))
; expect-output: 75025.0
