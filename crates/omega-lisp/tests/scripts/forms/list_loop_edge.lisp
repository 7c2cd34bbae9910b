; a list loop's back edge — a `cdr` and a number, `(loop (cdr l) (+ n 1))` in either order —
; is one op (an `Edge` of shape `Pairs`, its arguments decoded at compile time); off its fast
; path (a number argument that is not an integer, an overflow, a redefined primitive, a tail
; that is not a pair) the argument ops run one by one: the values and the first error in
; argument order are those of the plain code
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (len-a l n) (let loop ((l l) (n n)) (if (null? l) n (loop (cdr l) (+ n 1)))))
(define (len-b n l)
  (define (go n l) (if (null? l) n (go (+ n 1) (cdr l))))
  (go n l))
(println (len-a '(a b c d) 0) (len-b 10 '(a b c)) (len-a '() 7))
; every kind of number argument: a difference, a product, a copy, a constant, a sum of two
(define (down l n) (let loop ((l l) (n n)) (if (null? l) n (loop (cdr l) (- n 2)))))
(define (dbl n l) (let loop ((n n) (l l)) (if (null? l) n (loop (* n 2) (cdr l)))))
(define (const l k) (let loop ((l l) (k k)) (if (null? l) k (loop (cdr l) 5))))
(define (sum2 l a b) (let loop ((l l) (a a) (b b)) (if (null? l) a (loop (cdr l) (+ a b) b))))
(println (down '(1 2 3) 0) (dbl 1 '(x x x x x)) (const '(1 2) 0) (sum2 '(1 2 3) 0 4))
; a `pair?` test, and an argument passed on unchanged
(define (walk l n) (let loop ((l l) (n n)) (if (pair? l) (loop (cdr l) n) (list l n))))
(println (walk '(1 2 . 3) 9) (walk '() 1))
; floats and overflow leave the fused path, with the plain code's results and errors
(println (len-a '(a b) 0.5) (len-b 1.5 '(a)) (err (lambda () (len-a '(a b) 9223372036854775806))))
(println (err (lambda () (len-a '(a b) "n"))) (err (lambda () (len-b "n" '(a b)))))
; an improper list: the `cdr` of a non-pair raises, as `cdr` does
(println (err (lambda () (len-a '(1 2 . 3) 0))) (err (lambda () (len-a 'x 0))))
; a primitive redefined while the loop runs takes effect at the next iteration
(define (count-until l)
  (let loop ((l l) (n 0))
    (if (null? l) n
        (begin (if (= n 2) (set! + (lambda (a b) (- a b)))) (loop (cdr l) (+ n 1))))))
(println (count-until '(a b c d e)))
; expect-output: 4 13 7
; expect-output: -6 32 5 12
; expect-output: (3 9) (nil 1)
; expect-output: 2.5 2.5 (:overflow integer overflow in +)
; expect-output: (:type-error + expects numbers, got "n" (a string)) (:type-error + expects numbers, got "n" (a string))
; expect-output: (:type-error cdr expects a pair, got 3 (an integer)) (:type-error cdr expects a pair, got x (a symbol))
; expect-output: -1
