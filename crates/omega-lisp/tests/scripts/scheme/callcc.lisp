; Escaping continuations (SPEC 6.9, R7RS 6.10): call/cc, call-with-current-continuation,
; call/ec. A continuation escapes to its call/cc while that is still running; the unwinding
; runs finally blocks and dynamic-wind after-thunks but no catch or guard sees it.
(define (p x) (write x) (newline))
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
; R7RS 6.10: leaving a for-each early.
(p (call-with-current-continuation
    (lambda (exit)
      (for-each (lambda (x) (if (< x 0) (exit x))) '(54 0 37 -3 245 19))
      #t)))
; expect-output: -3
; R7RS list-length: #f for an improper list.
(define list-length
  (lambda (obj)
    (call-with-current-continuation
     (lambda (return)
       (letrec ((r (lambda (obj)
                     (cond ((null? obj) 0)
                           ((pair? obj) (+ (r (cdr obj)) 1))
                           (else (return #f))))))
         (r obj))))))
(p (list (list-length '(1 2 3 4)) (list-length '(a b . c))))
; expect-output: (4 #f)
; Leaving map early; a normal return gives f's value.
(define (first-negative xs)
  (call/cc (lambda (k) (map (lambda (x) (if (< x 0) (k x) x)) xs))))
(p (list (first-negative '(1 2 -7 4 -9)) (first-negative '(1 2 3))))
; expect-output: (-7 (1 2 3))
; A search through a tree (no generators).
(define (find-leaf pred tree)
  (call/cc
   (lambda (return)
     (let walk ((t tree))
       (cond ((pair? t) (walk (car t)) (walk (cdr t)))
             ((null? t) #f)
             ((pred t) (return t))))
     #f)))
(p (list (find-leaf (lambda (x) (> x 10)) '((1 2) (3 (40 5)) 60)) (find-leaf string? '(1 (2)))))
; expect-output: (40 #f)
; Nested: the inner continuation returns to the inner call/cc, the outer one past both.
(p (+ 1 (call/cc (lambda (outer) (* 10 (call/cc (lambda (inner) (inner 5))))))))
; expect-output: 51
(p (+ 1 (call/cc (lambda (outer) (* 10 (call/cc (lambda (inner) (outer 5))))))))
; expect-output: 6
; Multiple values and no value.
(p (call-with-values (lambda () (call/cc (lambda (k) (k 1 2 3)))) list))
; expect-output: (1 2 3)
(p (call-with-values (lambda () (call/cc (lambda (k) (k)))) list))
; expect-output: nil
; Escaping through try/finally runs the finally; no catch sees the escape.
(define log '())
(define (note x) (set! log (cons x log)))
(p (call/cc
    (lambda (k)
      (try (try (k 'escaped) (catch e (note 'inner-catch) 'caught))
           (catch e (note 'outer-catch) 'caught)
           (finally (note 'finally))))))
(p (reverse log))
; expect-output: escaped
; expect-output: (finally)
; A continuation escaping from a sort comparator and from apply.
(p (call/cc (lambda (k) (sort '(3 1 2) (lambda (a b) (if (= a 2) (k 'from-sort) (< a b)))))))
; expect-output: from-sort
(p (call/cc (lambda (k) (apply + 1 (list (k 'from-apply) 2)))))
; expect-output: from-apply
(p (call/cc (lambda (k) (member 2 '(1 2 3) (lambda (a b) (k (list 'from-member a b)))))))
; expect-output: (from-member 2 1)
(p (call/cc (lambda (k) (string-for-each (lambda (c) (if (char=? c #\b) (k c))) "abc"))))
; expect-output: #\b
; call/ec is the same escape-only continuation; procedure? holds.
(p (list (call/ec (lambda (k) (+ 1 (k 41)))) (procedure? (call/cc (lambda (k) k)))))
; expect-output: (41 #t)
; An escape in a loop, many times (the handler stack stays flat).
(p (let loop ((i 0) (acc 0))
     (if (= i 10000) acc (loop (+ i 1) (+ acc (call/cc (lambda (k) (k i) 0)))))))
; expect-output: 49995000
; Re-entry is refused with :unsupported, and unwinds nothing.
(define saved #f)
(p (+ 1 (call/cc (lambda (k) (set! saved k) 1))))
; expect-output: 2
(p (err (lambda () (saved 5))))
; expect-output: (:unsupported "continuation re-entry is not supported: its call/cc has already returned (continuations only escape to a call/cc still running)")
; Bad arguments.
(p (err (lambda () (call/cc 5))))
; expect-output: (:type-error "cannot call 5 (an integer): not a procedure")
(p (err (lambda () (call/cc (lambda () 1)))))
; expect-output: (:arity-error "<lambda> expects 0 arguments, got 1 argument")
(p (err (lambda () (call/cc))))
; expect-output: (:arity-error "call/cc expects 1 argument, got 0 arguments")
