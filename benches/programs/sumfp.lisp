;; sumfp — a float counting loop (r7rs-benchmarks "sumfp", transliterated).
(define (run n)
  (let loop ((i n) (sum 0.0))
    (if (< i 0.0)
        sum
        (loop (- i 1.0) (+ i sum)))))
(println (run 100000.0))
; expect-output: 5000050000.0
