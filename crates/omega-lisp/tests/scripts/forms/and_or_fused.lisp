; `and`/`or` items that are `null?`/`not` of a local branch directly (ShortL); the values of
; the forms are unchanged, also when the primitives are redefined to return other values
(define (shorter? x y)
  (and (not (null? y))
       (or (null? x) (shorter? (cdr x) (cdr y)))))
(println (shorter? '(1 2) '(1 2 3)) (shorter? '(1 2 3) '(1 2)) (shorter? '() '()))
(define (both x) (list (and (null? x) 'a) (or (null? x) 'b) (and (not x) 'c) (or (not x) 'd)))
(println (both '()) (both 1) (both #f))
(define (in-let x) (let ((r (or (not (null? x)) 'empty))) (list r (and (not (not x)) 'yes 'more))))
(println (in-let '()) (in-let '(1)))
(define (null? x) (if (eq? x '()) 5 '()))
(println (both '()) (both 1))
(define (not x) (if x 'no 'yes))
(println (in-let '()) (in-let '(1)) (shorter? '(1) '(1 2)))
; expect-output: #t #f #f
; expect-output: (a #t c #t) (#f b #f d) (#f b c #t)
; expect-output: (empty #f) (#t more)
; expect-output: (a 5 c #t) (nil b #f d)
; expect-output: (no more) (yes more) 5
