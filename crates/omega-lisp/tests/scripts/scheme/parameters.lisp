; Parameters (R7RS 4.2.6): make-parameter (with converter), parameterize; the bindings end
; however the body is left.
(define (p x) (write x) (newline))
(define radix (make-parameter 10 (lambda (x) (if (and (integer? x) (<= 2 x 16)) x (error "invalid radix" x)))))
(define (f n) (number->string n (radix)))
(p (list (f 12) (parameterize ((radix 2)) (f 12)) (f 12)))
; expect-output: ("12" "1100" "12")
(p (try (parameterize ((radix 0)) (f 12)) (catch e (list (error-message e) (error-irritants e)))))
; expect-output: ("invalid radix" (0))
; The converter applies to the initial value too.
(define doubled (make-parameter 2 (lambda (x) (* x 2))))
(p (list (doubled) (parameterize ((doubled 5)) (doubled))))
; expect-output: (4 10)
; Nested and several at once; values evaluated before any binding.
(define a (make-parameter 1))
(define b (make-parameter 2))
(p (parameterize ((a 10) (b (a))) (list (a) (b) (parameterize ((a 100)) (list (a) (b))))))
; expect-output: (10 1 (100 1))
; Restored on error and on escape.
(p (list (try (parameterize ((a 'err)) (error "x")) (catch e (a)))
         (call/cc (lambda (k) (parameterize ((a 'esc)) (k (a)))))
         (a)))
; expect-output: (1 esc 1)
; A closure sees the binding in effect when it is called, not when it was made.
(define get-a (parameterize ((a 'inside)) (lambda () (a))))
(p (list (get-a) (parameterize ((a 'later)) (get-a))))
; expect-output: (1 later)
; Errors.
(p (try (parameterize ((car 1)) 2) (catch e (error-message e))))
; expect-output: "parameterize expects a parameter, got #<procedure car> (a procedure)"
(p (try (a 5) (catch e (list (error-kind e) (error-message e)))))
; expect-output: (:arity-error "a parameter expects 0 arguments, got 1")
(p (try (make-parameter 1 5) (catch e (error-message e))))
; expect-output: "make-parameter expects a procedure, got 5 (an integer)"
(p (list (make-parameter 1) (procedure? (make-parameter 1))))
; expect-output: (#<procedure parameter> #t)
; Deep nesting restores every level.
(define depth (make-parameter 0))
(define (nest n) (if (= n 0) (depth) (parameterize ((depth n)) (+ 0 (nest (- n 1))))))
(p (list (nest 1000) (depth)))
; expect-output: (1 0)
