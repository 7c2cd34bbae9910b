;; ack — Ackermann's function (r7rs-benchmarks "ack", transliterated).
(define (ack m n)
  (cond ((= m 0) (+ n 1))
        ((= n 0) (ack (- m 1) 1))
        (else (ack (- m 1) (ack m (- n 1))))))
(println (ack 2 9) (ack 3 5))
; expect-output: 21 253
