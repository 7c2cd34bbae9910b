; R7RS 5.3.2: a (begin …) of definitions at the start of a body, and definitions a macro
; produces there, are internal definitions of the body; cond's => clause.
(defmacro def-pair (a b v) `(begin (define ,a ,v) (define ,b (+ ,v 1))))
(define (f x)
  (begin (define y (* x 2)) (define z 3))
  (def-pair p q 10)
  (list x y z p q))
(println (f 5))
(println (let () (begin (define a 1) (define (b) (+ a 1))) (b)))
(define (empty-begin) 1 (begin))
(println (empty-begin))
(println (cond ((assoc 2 '((1 . one) (2 . two))) => cdr) (else :none)))
; expect-output: (5 10 3 10 11)
; expect-output: 2
; expect-output: nil
; expect-output: two
