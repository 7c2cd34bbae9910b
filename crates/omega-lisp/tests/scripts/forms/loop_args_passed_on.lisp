; a back edge none of whose arguments changes (each passes its own parameter on) has no
; argument ops to fuse: it compiled to a panic of the compiler (found by the eval fuzzer)
(define (skip-all xs)
  (let loop ((acc '()))
    (cond ((null? xs) acc)
          (else (set! xs (cdr xs)) (loop acc)))))
(define (same-two n)
  (let loop ((a 1) (b 2))
    (if (> n 0) (begin (set! n (- n 1)) (loop a b)) (list a b n))))
(define (walk-same n)
  (define (walk acc) (if (= n 0) acc (begin (set! n (- n 1)) (walk acc))))
  (walk :same))
(println (skip-all '(1 2 3)) (same-two 3) (walk-same 5) (do ((x 0)) ((> 0 -1) x)))
; expect-output: nil (1 2 0) :same 0
