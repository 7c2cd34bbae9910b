; let-syntax, letrec-syntax and define-syntax in bodies (SPEC 6.9, R7RS 4.3.1, 5.3.2).
(define (p x) (write x) (newline))

(p (let-syntax ((double (syntax-rules () ((_ x) (* 2 x))))) (double 21)))
; expect-output: 42

; let-syntax: a transformer does not see the macros bound beside it; letrec-syntax: it does.
(define-syntax ten (syntax-rules () ((_) 10)))
(p (let-syntax ((ten (syntax-rules () ((_) (* 2 (ten)))))) (ten)))
; expect-output: 20
(p (letrec-syntax ((ev? (syntax-rules () ((_ n) (if (= n 0) #t (od? (- n 1))))))
                   (od? (syntax-rules () ((_ n) (if (= n 0) #f #t)))))
     (list (ev? 0) (ev? 2))))
; expect-output: (#t #t)

; A local macro shadows a global one and a global procedure, and ends with its scope.
(define (twice x) (list 'proc x))
(p (let-syntax ((twice (syntax-rules () ((_ e) (list e e))))) (twice 1)))
(p (twice 1))
; expect-output: (1 1)
; expect-output: (proc 1)

; define-syntax in a body is an internal definition: it sees the body's variables, it can be
; used by later forms, and a macro use at the body's top can expand to definitions.
(define (counter)
  (define n 0)
  (define-syntax bump! (syntax-rules () ((_) (set! n (+ n 1)))))
  (define-syntax def-const (syntax-rules () ((_ name v) (define name v))))
  (def-const step 5)
  (bump!)
  (bump!)
  (+ n step))
(p (counter))
; expect-output: 7

; In a lambda body, after other definitions; a recursive local macro.
(define f
  (lambda (xs)
    (define-syntax my-and
      (syntax-rules () ((_) #t) ((_ e) e) ((_ e r ...) (if e (my-and r ...) #f))))
    (my-and (pair? xs) (number? (car xs)) (car xs))))
(p (list (f '(3)) (f '(a)) (f '())))
; expect-output: (3 #f #f)

; A body define shadows a global macro of that name in its body.
(define-syntax shadowed (syntax-rules () ((_ x) 'macro)))
(define (g)
  (define (shadowed x) (list 'local x))
  (shadowed 1))
(p (g))
; expect-output: (local 1)

; Macros generating macros at the top of a body.
(define (h)
  (define-syntax def-getter
    (syntax-rules () ((_ name val) (define-syntax name (syntax-rules () ((_) val))))))
  (def-getter get-five 5)
  (get-five))
(p (h))
; expect-output: 5

; A local macro's definitions spliced into the enclosing body with begin.
(define (k)
  (let-syntax ((two-defs (syntax-rules () ((_ a b) (begin (define a 1) (define b 2))))))
    (two-defs x y)
    (+ x y)))
(p (k))
; expect-output: 3
