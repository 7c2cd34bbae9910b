;; sum — an integer counting loop (r7rs-benchmarks "sum", transliterated), run several times.
(define (run n)
  (let loop ((i n) (sum 0))
    (if (< i 0)
        sum
        (loop (- i 1) (+ i sum)))))
(define (repeat k n)
  (let loop ((k k) (r 0))
    (if (= k 0) r (loop (- k 1) (run n)))))
(println (repeat 20 10000))
; expect-output: 50005000
