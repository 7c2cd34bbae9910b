(define (sum . xs) (apply + xs))
(println (sum) (sum 1 2 3) (apply sum 1 2 '(3 4)) (apply list '()))
(println (apply max '(3 9 2)))
; expect-output: 0 6 10 nil
; expect-output: 9
((lambda (a #;ignored b) (list a b)) 1 2)
; expect: (1 2)
