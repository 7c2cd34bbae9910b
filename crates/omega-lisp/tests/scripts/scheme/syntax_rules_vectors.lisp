; syntax-rules vector patterns and templates (R7RS 4.3.2): #(p ...) in a pattern matches a
; vector element by element (ellipsis first, middle or nested); #(t ...) in a template makes a
; vector (data: its identifiers are not renamed, and nothing in it is evaluated).
(define (p x) (write x) (newline))

(define-syntax vsum
  (syntax-rules ()
    ((_ #(a ...)) (+ a ...))
    ((_ other) 'not-a-vector)))
(p (list (vsum #(1 2 3)) (vsum #()) (vsum (1 2))))
; expect-output: (6 0 not-a-vector)

(define-syntax ends
  (syntax-rules ()
    ((_ #(first middle ... last)) (list first last (length '(middle ...))))))
(p (ends #(1 2 3 4 5)))
; expect-output: (1 5 3)
(p (ends #(7 8)))
; expect-output: (7 8 0)

(define-syntax vec-of
  (syntax-rules ()
    ((_ a ...) #(a ...))))
(p (vec-of 1 2 3))
; expect-output: #(1 2 3)
(p (vec-of x "s" #\c))
; expect-output: #(x "s" #\c)

(define-syntax swap-pairs
  (syntax-rules ()
    ((_ #((a b) ...)) #((b a) ...))))
(p (swap-pairs #((1 2) (3 4))))
; expect-output: #((2 1) (4 3))

(define-syntax alist
  (syntax-rules ()
    ((_ #((k v) ...)) (list (cons 'k v) ...))))
(p (alist #((one 1) (two (+ 1 1)))))
; expect-output: ((one . 1) (two . 2))

; Nested vectors and ellipses.
(define-syntax flatten2
  (syntax-rules ()
    ((_ #(#(x ...) ...)) '(x ... ...))))
(p (flatten2 #(#(1 2) #() #(3))))
; expect-output: (1 2 3)

; An identifier the template introduces inside a vector is data: the plain symbol.
(define-syntax tagged
  (syntax-rules ()
    ((_ v) #(tag v))))
(p (tagged 7))
; expect-output: #(tag 7)
(p (eq? (vector-ref (tagged 7) 0) 'tag))
; expect-output: #t

; A vector with no pattern variable in a template is the constant as written.
(define-syntax konst
  (syntax-rules ()
    ((_) #(1 (2 3)))))
(p (konst))
; expect-output: #(1 (2 3))

; Vectors pass through pattern variables untouched, and a literal datum in a vector pattern.
(define-syntax first-of
  (syntax-rules ()
    ((_ #(0 x ...)) 'starts-with-zero)
    ((_ #(y x ...)) 'y)))
(p (list (first-of #(0 1)) (first-of #(5 1))))
; expect-output: (starts-with-zero 5)
(define-syntax id (syntax-rules () ((_ x) x)))
(p (id #(1 2)))
; expect-output: #(1 2)
