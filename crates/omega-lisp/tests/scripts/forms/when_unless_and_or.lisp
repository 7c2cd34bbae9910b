(println (when #f 1) (unless #f 1 2) (unless #t 1))
(println (and) (or) (and 1 2 3) (and 1 #f 3) (or #f nil 7) (or #f #f))
; expect-output: nil 2 nil
; expect-output: #t #f 3 #f 7 #f
(define (loop n) (or (= n 0) (loop (- n 1))))
(loop 100000)
; expect: #t
