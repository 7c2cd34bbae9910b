(define a 1)
(println (define b 2))
(set! a (+ a 10))
(define (f x) (* x 2))
(define (g . args) args)
(define (h a b . rest) (list a b rest))
(define nothing)
(println a (f 4) (g) (g 1 2) (h 1 2) (h 1 2 3 4) nothing)
; expect-output: b
; expect-output: 11 8 nil (1 2) (1 2 nil) (1 2 (3 4)) nil
(define (counter)
  (define n 0)
  (lambda () (set! n (+ n 1)) n))
(define c (counter))
(c) (c)
(c)
; expect: 3
