; case-lambda (SPEC 6.9), from R7RS 4.2.9: the first clause whose formals accept the arguments.
(define (p x) (write x) (newline))
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define range
  (case-lambda
    ((e) (range 0 e))
    ((b e) (do ((r '() (cons e r))
                (e (- e 1) (- e 1)))
               ((< e b) r)))))
(p (list (range 3) (range 3 5)))
; expect-output: ((0 1 2) (3 4))
(define plus
  (case-lambda
    (() 0)
    ((x) x)
    ((x y) (+ x y))
    ((x y z) (+ (+ x y) z))
    (args (apply + args))))
(p (list (plus) (plus 1) (plus 1 2) (plus 1 2 3) (plus 1 2 3 4)))
; expect-output: (0 1 3 6 10)
(define g (case-lambda ((a) (list 'one a)) ((a b . more) (list 'many a b more))))
(p (list (g 1) (g 1 2) (g 1 2 3 4)))
; expect-output: ((one 1) (many 1 2 nil) (many 1 2 (3 4)))
(p (err (lambda () (range 1 2 3))))
; expect-output: (:arity-error "case-lambda procedure expects 1, 2 arguments, got 3")
(p (err (lambda () (g))))
; expect-output: (:arity-error "case-lambda procedure expects 1, 2 or more arguments, got 0")
(range)
; expect-error: :arity-error case-lambda procedure expects 1, 2 arguments, got 0
; expect-error-line:   at range (tests/scripts/scheme/case_lambda.lisp:5:3)
