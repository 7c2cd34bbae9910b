; `pair?`, `cadr`, `cddr` and `caddr` are inlined primitives (vm/lists.rs): on a local and on
; any other operand, in tests, `and`/`or` and loops; their values, the builtins' errors on a
; non-pair and the redefined globals are those of the plain calls
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (parts x) (list (pair? x) (cadr x) (cddr x) (caddr x)))
(println (parts '(1 2 3 4)) (parts (list 'a "b" 2.5)))
(define (nested x) (list (cadr (car x)) (caddr (cdr x)) (pair? (cddr x))))
(println (nested '((1 2) 3 4 5)))
; a cyclic tail: the second step reads the same pair
(define c (list 1 2))
(set-cdr! c c)
(println (eq? (cddr c) c) (cadr c) (caddr c))
; `pair?` as a test, negated, and as an `and`/`or` item
(define (kind x) (cond ((not (pair? x)) 'atom) ((pair? (cdr x)) 'long) (else 'one)))
(println (kind 1) (kind '(1)) (kind '(1 2)) (kind '()))
(define (shape x) (list (and (pair? x) 'p) (or (pair? x) 'q) (and (not (pair? x)) 'r)))
(println (shape '(1)) (shape 7))
; walking a list by twos in a loop
(define (odds l) (do ((l l (cddr l)) (a '() (cons (car l) a))) ((not (pair? l)) (reverse a))))
(println (odds '(1 2 3 4 5 6)))
; errors on non-pairs: the builtins' messages
(define (f x) (cadr x))
(define (g x) (cddr x))
(define (h x) (caddr x))
(println (err (lambda () (f '(1)))) (err (lambda () (f 5))))
(println (err (lambda () (g '(1)))) (err (lambda () (h '(1 2)))) (err (lambda () (h 'a))))
(println (err (lambda () (cadr (car '(4))))))
; redefinitions reach every use
(define (cadr x) 'my-cadr)
(define (pair? x) 'my-pair)
(println (parts '(1 2 3)) (kind '(1 2)) (shape '(1)))
(define (caddr x) (car x))
(define (cddr x) 'my-cddr)
(println (parts '(1 2 3)) (g '(1)))
; expect-output: (#t 2 (3 4) 3) (#t b (2.5) 2.5)
; expect-output: (2 5 #t)
; expect-output: #t 1 1
; expect-output: atom one long atom
; expect-output: (p #t #f) (#f q r)
; expect-output: (1 3 5)
; expect-output: (:type-error cadr expects a pair, got nil (nil)) (:type-error cadr expects a pair, got 5 (an integer))
; expect-output: (:type-error cddr expects a pair, got nil (nil)) (:type-error caddr: cannot take the car of the cddr of (1 2): it is nil) (:type-error caddr: cannot take the cdr of a: it is a symbol)
; expect-output: (:type-error cadr expects a pair, got 4 (an integer))
; expect-output: (my-pair my-cadr (3) 3) long (p my-pair #f)
; expect-output: (my-pair my-cadr my-cddr 1) my-cddr
