; a loop's back edge whose arguments are numbers computed from locals and constants, with the
; loop's exit test at its head, is one op (`Edge`): integers or floats on the fast path; a mix,
; a non-number, an overflow or a redefined primitive take the plain ops, with the same values,
; the same first error and the redefinition seen
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
; the shapes: `<` on a small integer, `=` on two locals, `>=` negated, a float test, a large
; constant, a loop call in the then-branch, a parameter left in place
(define (sum n) (let loop ((i n) (s 0)) (if (< i 0) s (loop (- i 1) (+ i s)))))
(define (upto n) (let loop ((i 0) (s 0)) (if (= i n) s (loop (+ i 1) (+ s i)))))
(define (upneg n k) (let loop ((i 0) (k k)) (if (not (>= i n)) (loop (+ i 1) k) (list i k))))
(define (sumfp n) (let loop ((i n) (s 0.0)) (if (< i 0.0) s (loop (- i 1.0) (+ i s)))))
(define (big n) (let loop ((i 0) (p 1)) (if (> i n) p (loop (+ i 100000) (* p 3)))))
(define (fma n) (let loop ((i 0) (a 1.5) (b 2)) (if (< i n) (loop (+ i 1) (* a 2.0) (- b i)) (list a b))))
(println (sum 100) (upto 100) (upneg 5 'k) (sumfp 100.0) (big 1000000) (fma 4))
; integers that become floats mid-loop, and floats compared with an integer bound
(define (mixed n) (let loop ((i n) (s 0)) (if (< i 0) s (loop (- i 1) (+ s (if (= i 2) 0.5 i))))))
(define (fdown x) (let loop ((x x) (n 0)) (if (< x 1) n (loop (* x 0.5) (+ n 1)))))
(define (imix n) (let loop ((i n) (s 1)) (if (<= i 0) s (loop (- i 1.5) (* s 2)))))
(println (mixed 5) (fdown 1000.0) (imix 6))
; an overflow mid-loop (in the second argument, then in the first)
(println (err (lambda () (let loop ((i 0) (p 1)) (if (> i 100) p (loop (+ i 1) (* p 10)))))))
(println (err (lambda () (let loop ((i 9223372036854775800) (s 0)) (if (< i 0) s (loop (+ i 1) (+ s 1)))))))
; the exit test on a non-number (it raises, with the test's own message)
(println (err (lambda () (let loop ((i 3) (j "x")) (if (< j 0) i (loop (- i 1) i))))))
(println (err (lambda () (let loop ((i 3) (j 0)) (if (< i j) i (loop (- i 1) "s"))))))
; the argument that is not a number is reported in argument order
(println (err (lambda () (let loop ((i 3) (s "a")) (if (< i 0) s (loop (- i 1) (+ s i)))))))
; `<` redefined mid-loop (the folded test sees it), then `+`
(define (lt-mid n)
  (let loop ((i n) (s 0))
    (if (< i 0)
        s
        (begin
          (if (= i 2) (set! < (lambda (a b) #t)))
          (loop (- i 1) (+ i s))))))
(println (lt-mid 5))
(define (plus-mid n)
  (let loop ((i n) (s 0))
    (if (= i 0)
        s
        (begin
          (if (= i 2) (set! + (lambda (a b) (list a b))))
          (loop (- i 1) (+ s i))))))
(println (plus-mid 4))
; expect-output: 5050 4950 (5 k) 5050.0 177147 (24.0 -4)
; expect-output: 13.5 10 16
; expect-output: (:overflow integer overflow in *)
; expect-output: (:overflow integer overflow in +)
; expect-output: (:type-error < expects numbers, got "x" (a string))
; expect-output: (:type-error < expects numbers, got "s" (a string))
; expect-output: (:type-error + expects numbers, got "a" (a string))
; expect-output: 14
; expect-output: ((7 2) 1)
