(define add (lambda (a b) (+ a b)))
(define add2 (fn (a b) (+ a b)))
(define all (lambda args args))
(define (make-adder n) (lambda (x) (+ x n)))
(println (add 1 2) (add2 3 4) (all 1 2 3) ((make-adder 10) 5))
(println ((lambda (x . r) (list x r)) 1 2 3))
(println add)
; expect-output: 3 7 (1 2 3) 15
; expect-output: (1 (2 3))
; expect-output: #<procedure add>
; closures capture per-iteration bindings
(define fs (map (lambda (i) (lambda () i)) '(1 2 3)))
(map (lambda (f) (f)) fs)
; expect: (1 2 3)
