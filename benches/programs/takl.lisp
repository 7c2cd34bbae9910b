;; takl — Takeuchi's function on list lengths (r7rs-benchmarks "takl", transliterated).
(define (listn n)
  (if (= n 0) '() (cons n (listn (- n 1)))))
(define (shorterp x y)
  (and (not (null? y))
       (or (null? x) (shorterp (cdr x) (cdr y)))))
(define (mas x y z)
  (if (not (shorterp y x))
      z
      (mas (mas (cdr x) y z)
           (mas (cdr y) z x)
           (mas (cdr z) x y))))
(println (length (mas (listn 18) (listn 12) (listn 6))))
; expect-output: 7
