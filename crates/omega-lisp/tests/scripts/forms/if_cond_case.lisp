(println (if #t 1 2) (if #f 1 2) (if nil 1 2) (if 0 'yes 'no) (if '() 1) (if #f 1))
(define (classify n)
  (cond ((< n 0) 'negative)
        ((= n 0) 'zero)
        ((assoc n '((1 . one) (2 . two))) => cdr)
        (else 'many)))
(println (map classify '(-5 0 1 2 9)))
(println (cond (#f 1)) (cond ((+ 1 1))))
(define (kind x)
  (case x
    ((1 2 3) 'small)
    ((a b) 'letter)
    (("s") 'string)
    (else 'other)))
(println (map kind '(1 3 a b "s" 99)))
(println (case 5 ((1) 'one)))
; expect-output: 1 2 2 yes nil nil
; expect-output: (negative zero one two many)
; expect-output: nil 2
; expect-output: (small small letter letter string other)
; expect-output: nil
(when (> 1 0) 'a 'b)
; expect: b
