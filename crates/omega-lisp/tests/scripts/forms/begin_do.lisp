(begin (define a 1) (define b 2))
(println (+ a b) (begin) (begin 1 2 3))
(println (do ((i 0 (+ i 1)) (acc '() (cons i acc))) ((= i 4) acc)))
(define v 0)
(do ((i 0 (+ i 1))) ((= i 5)) (set! v (+ v i)))
(println v)
; expect-output: 3 nil 3
; expect-output: (3 2 1 0)
; expect-output: 10
(do ((i 0 (+ i 1))) ((= i 1000000) i))
; expect: 1000000
