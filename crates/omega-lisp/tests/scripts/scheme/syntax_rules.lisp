; syntax-rules (R7RS 4.3.2, SPEC 6.9): literals, _, ellipses (nested, in the middle, after a
; dotted tail), (... ...) escapes, a custom ellipsis, dotted patterns, constants in patterns.
(define (p x) (write x) (newline))

(define-syntax my-or
  (syntax-rules ()
    ((_) #f)
    ((_ e) e)
    ((_ e r ...) (let ((t e)) (if t t (my-or r ...))))))
(p (list (my-or) (my-or 1) (my-or #f #f 3) (my-or #f #f)))
; expect-output: (#f 1 3 #f)

(define-syntax swap!
  (syntax-rules ()
    ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp)))))
(define x 1)
(define y 2)
(swap! x y)
(p (list x y))
; expect-output: (2 1)

(define-syntax while
  (syntax-rules ()
    ((_ c body ...) (let lp () (when c body ... (lp))))))
(define i 0)
(define acc '())
(while (< i 4) (set! acc (cons i acc)) (set! i (+ i 1)))
(p acc)
; expect-output: (3 2 1 0)

(define-syntax my-if
  (syntax-rules (then else)
    ((_ c then t else e) (if c t e))
    ((_ c then t) (if c t #f))))
(p (list (my-if #t then 'yes else 'no) (my-if #f then 'yes else 'no) (my-if #f then 1)))
; expect-output: (yes no #f)

(define-syntax be-like-begin
  (syntax-rules ()
    ((be-like-begin name)
     (define-syntax name
       (syntax-rules ()
         ((name expr (... ...))
          (begin expr (... ...))))))))
(be-like-begin sequence)
(p (sequence 1 2 3 4))
; expect-output: 4

(define-syntax my-let*
  (syntax-rules ()
    ((_ () body ...) (let () body ...))
    ((_ ((x v) rest ...) body ...) (let ((x v)) (my-let* (rest ...) body ...)))))
(p (my-let* ((a 1) (b (+ a 1)) (c (* b 10))) (list a b c)))
; expect-output: (1 2 20)

; An ellipsis in the middle of a list, and with nothing to match.
(define-syntax ends (syntax-rules () ((_ a ... y z) '((a ...) y z))))
(p (list (ends 1 2 3 4 5) (ends 4 5)))
; expect-output: (((1 2 3) 4 5) (nil 4 5))

; Nested ellipses, and two ellipses flattening one level.
(define-syntax rotate (syntax-rules () ((_ (a b ...) ...) '((b ... a) ...))))
(p (rotate (1 2 3) (4) (5 6)))
; expect-output: ((2 3 1) (4) (6 5))
(define-syntax flatten2 (syntax-rules () ((_ (x ...) ...) '(x ... ...))))
(p (flatten2 (1 2) () (3)))
; expect-output: (1 2 3)

; A variable of lower depth is repeated inside a deeper ellipsis.
(define-syntax tag-all (syntax-rules () ((_ tag x ...) '((tag x) ...))))
(p (tag-all t 1 2 3))
; expect-output: ((t 1) (t 2) (t 3))

; Dotted patterns: the rest of the list, also after an ellipsis.
(define-syntax split (syntax-rules () ((_ a . r) '(a r))))
(p (list (split 1 2 3) (split 1)))
; expect-output: ((1 (2 3)) (1 nil))
(define-syntax tail-of (syntax-rules () ((_ (a ... . r)) '(r a ...))))
(p (list (tail-of (1 2 . 3)) (tail-of (1 2))))
; expect-output: ((3 1 2) (nil 1 2))

; (... ...) escapes: the ellipsis stands for itself in the template.
(define-syntax dots (syntax-rules () ((_ x) '(x (... ...)))))
(p (dots 1))
; expect-output: (1 ...)

; A custom ellipsis identifier; ... is then an ordinary symbol.
(define-syntax my-list (syntax-rules etc () ((_ x etc) (list x etc '...))))
(p (my-list 1 2 3))
; expect-output: (1 2 3 ...)

; _ matches anything; constants match by equal?.
(define-syntax third (syntax-rules () ((_ _ _ x) x)))
(p (third 1 2 3))
; expect-output: 3
(define-syntax what (syntax-rules () ((_ 1) 'one) ((_ "s") 'str) ((_ :k) 'kw) ((_ #\a) 'char) ((_ x) 'other)))
(p (list (what 1) (what "s") (what :k) (what #\a) (what 2)))
; expect-output: (one str kw char other)

; A macro expanding to a lambda named by define; a template that is one pattern variable.
(define-syntax fn1 (syntax-rules () ((_ arg body) (lambda (arg) body))))
(define sq (fn1 n (* n n)))
(define-syntax id (syntax-rules () ((_ e) e)))
(p (list (sq 7) (id 'same)))
; expect-output: (49 same)

; define-syntax evaluates to the name; redefinition replaces the macro.
(p (define-syntax id (syntax-rules () ((_ e) (list e)))))
(p (id 1))
; expect-output: id
; expect-output: (1)
