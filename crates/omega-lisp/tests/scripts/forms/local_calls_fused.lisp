; local functions (internal defines) that capture nothing are loaded as constants by the code
; after their definition; a local list loop's self jump `(ok? row (+ dist 1) (cdr placed))` is one
; fused back edge with its `null?` test; `(not (= (car placed) (+ row dist)))` one fused
; comparison. Off their fast paths (a non-pair, a float, an overflow, a redefined primitive) the
; plain ops give the same values and errors.
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (nqueens n)
  (define (iota1 n)
    (let loop ((i n) (l '()))
      (if (= i 0) l (loop (- i 1) (cons i l)))))
  (define (ok? row dist placed)
    (if (null? placed)
        #t
        (and (not (= (car placed) (+ row dist)))
             (not (= (car placed) (- row dist)))
             (ok? row (+ dist 1) (cdr placed)))))
  (define (try-it x y z)
    (if (null? x)
        (if (null? y) 1 0)
        (+ (if (ok? (car x) 1 z)
               (try-it (append (cdr x) y) '() (cons (car x) z))
               0)
           (try-it (cdr x) (cons (car x) y) z))))
  (try-it (iota1 n) '() '()))
(println (nqueens 1) (nqueens 4) (nqueens 6) (nqueens 8))
(define (check row dist placed)
  (define (ok? row dist placed)
    (if (null? placed)
        #t
        (and (not (= (car placed) (+ row dist)))
             (not (= (car placed) (- row dist)))
             (ok? row (+ dist 1) (cdr placed)))))
  (define (run) (ok? row dist placed))
  (list (run) (eq? run run) (procedure? ok?)))
(println (check 1 1 '(5 7 9)) (check 1 1 '(5 2 9)) (check 4 1 '(5 7 9)))
; floats, an improper list, a non-number element
(println (check 1.0 1 '(5 7 9)) (check 1 1.5 '(5 7 9)) (check 4.0 1 '(5 7 9)) (check 1 1 '(5.0 2.0)))
(println (err (lambda () (check 1 1 '(a)))) (err (lambda () (check 1 1 '(5 7 . 9)))))
; the counter overflows on the back edge: the `+`'s own error
(println (err (lambda () (check 0 9223372036854775806 '(1 2 3)))))
; a forward reference and a redefinition keep the variable's cell
(define (fwd) (define (b) (a)) (define (a) 7) (b))
(define (twice) (define (a) 1) (define (b) (a)) (define (a) 2) (b))
(println (fwd) (twice))
; `cdr`, `null?` and `car` redefined: every fused op goes through the new definitions
(set! cdr (lambda (p) (let ((t (list-tail p 1))) (if (pair? t) t '()))))
(println (check 1 1 '(5 7 9)) (check 1 1 '(5 7 . 20)))
(set! null? (lambda (x) (not (pair? x))))
(println (check 1 1 '(5 7 9 . 11)))
(set! car (lambda (p) 100))
(println (check 1 1 '(5 2 9)) (check 99 1 '(5)))
; expect-output: 1 2 4 92
; expect-output: (#t #t #t) (#t #t #t) (#f #t #t)
; expect-output: (#t #t #t) (#t #t #t) (#f #t #t) (#t #t #t)
; expect-output: (:type-error = expects numbers, got a (a symbol)) (:type-error car expects a pair, got 9 (an integer))
; expect-output: (:overflow integer overflow in +)
; expect-output: 7 2
; expect-output: (#t #t #t) (#t #t #t)
; expect-output: (#t #t #t)
; expect-output: (#t #t #t) (#f #t #t)
