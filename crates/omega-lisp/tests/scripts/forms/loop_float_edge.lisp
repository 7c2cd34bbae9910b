; a float counting loop's back edge adds its step decoded at compile time and runs its exit
; test as a decoded interval: the same values as the plain ops, at every boundary
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (down n step) (let loop ((i n) (sum 0.0)) (if (< i 0.0) sum (loop (- i step) (+ i sum)))))
(define (up n) (let loop ((i 0.0) (sum 0.0)) (if (>= i n) sum (loop (+ i 0.5) (+ i sum)))))
(define (upto-le n) (let loop ((i 0.0) (sum 0.0)) (if (not (<= i n)) sum (loop (+ i 1) (+ sum i)))))
(define (eq-stop n) (let loop ((i n) (c 0.0)) (if (= i 0) c (loop (- i 1.0) (+ i c)))))
(define (gt-stop n) (let loop ((i n) (c 0.0)) (if (> i -0.0) (loop (- i 0.25) (+ i c)) c)))
(println (down 10.0 1.0) (down 10.0 0.5) (down 0.0 1.0) (down -0.0 1.0) (down -1.0 1.0))
(println (up 3.0) (up 0.0) (up 0.25) (upto-le 3.0) (upto-le 2.5) (upto-le -0.0))
(println (eq-stop 5.0) (eq-stop 0.0) (eq-stop -0.0) (gt-stop 1.0) (gt-stop 0.0) (gt-stop -0.0))
; mixed integer and float counters, and infinities, keep their generic results
(println (down 10 1.0) (eq-stop 5) (up -inf.0) (down -inf.0 1.0))
; NaN: no comparison holds (the negated test stops the loop)
(define (below n step) (let loop ((i n) (sum 0.0)) (if (not (< i 10.0)) sum (loop (+ i step) (+ i sum)))))
(println (below 0.0 1.0) (below +nan.0 1.0) (below 2.0 +nan.0) (below -inf.0 +inf.0))
; the integer step is decoded too: one that cannot be negated takes the general path
(define (far n) (let loop ((i n) (s 0)) (if (> i 0) s (loop (- i -9223372036854775808) (+ i s)))))
(define (steps n k) (let loop ((i n) (s 0)) (if (< i 0) s (loop (- i k) (+ i s)))))
(println (far -1) (far -5) (steps 10 3) (steps 10 3.5) (err (lambda () (far 0))))
; expect-output: 55.0 105.0 0.0 0.0 0.0
; expect-output: 7.5 0.0 0.0 6.0 3.0 0.0
; expect-output: 15.0 0.0 0.0 2.5 0.0 0.0
; expect-output: 55.0 15.0 0.0 0.0
; expect-output: 45.0 0.0 2.0 -inf.0
; expect-output: -1 -5 22 19.5 (:overflow integer overflow in -)
