;; fib — doubly recursive Fibonacci on integers (r7rs-benchmarks "fib", transliterated).
(define (fib n)
  (if (< n 2)
      n
      (+ (fib (- n 1)) (fib (- n 2)))))
(define input 25)
(println (fib input))
; expect-output: 75025
