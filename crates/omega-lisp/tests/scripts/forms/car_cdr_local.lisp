; `car`/`cdr` of a local are one op each (CarL/CdrL): values, errors on non-pairs (naming the
; value and the position) and redefined globals are those of the plain calls
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (walk l acc) (if (null? l) (reverse acc) (walk (cdr l) (cons (car l) acc))))
(println (walk '(1 "two" 3.0 (4) #t) '()))
(define (heads x) (list (car x) (cdr x) (car (cdr x))))
(println (heads '(a b c)) (heads (list 1 2)))
(define (f x) (car x))
(define (g x) (cdr x))
(println (err (lambda () (f 5))) (err (lambda () (g '()))) (err (lambda () (f "s"))))
; redefined mid-program: every use calls the new global
(define (car x) (list 'my-car x))
(println (heads '(a b c)) (f 5))
(define (cdr x) '())
(println (walk '(1 2 3) '()) (g '(1 2)))
; expect-output: (1 two 3.0 (4) #t)
; expect-output: (a (b c) b) (1 (2) 2)
; expect-output: (:type-error car expects a pair, got 5 (an integer)) (:type-error cdr expects a pair, got nil (nil)) (:type-error car expects a pair, got "s" (a string))
; expect-output: ((my-car (a b c)) (b c) (my-car (b c))) (my-car 5)
; expect-output: ((my-car (1 2 3))) nil
