; Hygiene of syntax-rules (SPEC 6.9): bindings a template introduces do not capture the user's
; variables, and free identifiers in a template mean what they meant at the definition.
(define (p x) (write x) (newline))

; swap! with a user variable named tmp.
(define-syntax swap!
  (syntax-rules ()
    ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp)))))
(define tmp 1)
(define other 2)
(swap! tmp other)
(p (list tmp other))
; expect-output: (2 1)

; my-or with a user variable named t.
(define-syntax my-or
  (syntax-rules ()
    ((_) #f)
    ((_ e) e)
    ((_ e r ...) (let ((t e)) (if t t (my-or r ...))))))
(define t 5)
(p (my-or #f t))
; expect-output: 5

; A while macro whose loop is named loop; the user's body calls its own loop.
(define-syntax while
  (syntax-rules ()
    ((_ c body ...) (let loop () (when c body ... (loop))))))
(define (loop) 'user-loop)
(define n 0)
(define seen '())
(while (< n 2) (set! seen (cons (loop) seen)) (set! n (+ n 1)))
(p seen)
; expect-output: (user-loop user-loop)

; Free identifiers in a template: special forms, global procedures and macros keep their
; meaning where the use site has locals of those names.
(p (let ((if list) (let 'shadowed) (t 0)) (my-or #f 7)))
; expect-output: 7
(define (helper x) (* x 10))
(define-syntax call-helper (syntax-rules () ((_ x) (helper x))))
(p (let ((helper (lambda (x) 0))) (call-helper 2)))
; expect-output: 20
(p (let ((+ -)) (let-syntax ((add (syntax-rules () ((_ a b) (+ a b))))) (add 1 2))))
; expect-output: -1

; R7RS 4.3.1: the user binds if; the macro's if is still the special form.
(p (let-syntax ((given-that (syntax-rules ()
                              ((_ test stmt1 stmt2 ...)
                               (if test (begin stmt1 stmt2 ...))))))
     (let ((if #t))
       (given-that if (set! if 'now))
       if)))
; expect-output: now

; R7RS 4.3.1: a local macro's free x is the x of its definition, not the use's.
(p (let ((x 'outer))
     (let-syntax ((m (syntax-rules () ((m) x))))
       (let ((x 'inner))
         (m)))))
; expect-output: outer

; R7RS 4.3.1: letrec-syntax my-or with let, if and temp bound by the user.
(p (letrec-syntax
       ((my-or (syntax-rules ()
                 ((my-or) #f)
                 ((my-or e) e)
                 ((my-or e1 e2 ...)
                  (let ((temp e1))
                    (if temp temp (my-or e2 ...)))))))
     (let ((x #f)
           (y 7)
           (temp 8)
           (let odd?)
           (if even?))
       (my-or x (let temp) (if y) y))))
; expect-output: 7

; do and lambda parameters introduced by a template.
(define-syntax count-to
  (syntax-rules ()
    ((_ k) (do ((i 0 (+ i 1)) (acc '() (cons i acc))) ((= i k) acc)))))
(define i 100)
(p (list (count-to 3) i))
; expect-output: ((2 1 0) 100)
(define-syntax with-x (syntax-rules () ((_ e) ((lambda (x) e) 'macro-x))))
(define x 'user-x)
(p (with-x x))
; expect-output: user-x

; A definition a template introduces in a body stays private to the expansion.
(define (f)
  (define-syntax def-helper
    (syntax-rules () ((_ v) (begin (define helper v) (set! seen helper)))))
  (define seen #f)
  (define helper 'user)
  (def-helper 5)
  (list seen helper))
(p (f))
; expect-output: (5 user)

; Literals match by binding: a local => is not the literal.
(define-syntax arrow (syntax-rules (=>) ((_ a => b) (list 'arrow a b)) ((_ a b) (list 'plain a b))))
(p (list (arrow 1 => 2) (let ((=> 0)) (arrow 1 =>))))
; expect-output: ((arrow 1 2) (plain 1 0))

; Quoted template symbols are plain symbols.
(define-syntax q (syntax-rules () ((_ x) '(x tmp (nested y)))))
(p (list (q 1) (eq? (cadr (q 1)) 'tmp)))
; expect-output: ((1 tmp (nested y)) #t)
(define-syntax qq (syntax-rules () ((_ x) `(x ,x tmp))))
(p (qq 5))
; expect-output: (5 5 tmp)
(define-syntax kind (syntax-rules () ((_ x) (case x ((a b) 'ab) (else 'none)))))
(p (list (kind 'a) (kind 'z)))
; expect-output: (ab none)
(define-syntax classify
  (syntax-rules () ((_ x) (cond ((assv x '((1 . one))) => cdr) (else 'other)))))
(p (list (classify 1) (classify 2)))
; expect-output: (one other)

; Through a defmacro of the prelude (let-values): introduced a and b stay private.
(define-syntax pair-swap (syntax-rules () ((_ e) (let-values (((a b) e)) (list b a)))))
(define a 'user-a)
(p (pair-swap (values 1 a)))
; expect-output: (user-a 1)

; A defmacro that looks for else sees a template's else.
(defmacro first-clause (clause)
  (if (eq? (car clause) 'else) `(begin ,@(cdr clause)) `(if ,(car clause) (begin ,@(cdr clause)) #f)))
(define-syntax otherwise (syntax-rules () ((_ v) (first-clause (else v)))))
(p (otherwise 3))
; expect-output: 3

; A top-level define of an introduced name defines the plain global (one namespace).
(define-syntax def-glob (syntax-rules () ((_ v) (define glob v))))
(def-glob 9)
(p glob)
; expect-output: 9
