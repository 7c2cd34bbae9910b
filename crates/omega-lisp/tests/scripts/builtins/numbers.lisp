(println (+) (*) (- 3) (+ 1 2 3) (- 10 1 2) (* 2 3 4) (+ 1 2.5) (* 2 0.5))
(println (/ 6 3) (/ 1 2) (/ 1.0 4) (/ 2) (/ 12 2 3) (/ 7 2.0))
(println (quotient 7 2) (quotient -7 2) (remainder -7 2) (modulo -7 2) (modulo 7 -2))
(println (abs -5) (abs -2.5) (min 3 1 2) (max 3 1 2) (min 1 2.0) (max 1 2.0))
(println (floor 2.5) (ceiling 2.5) (round 2.5) (round 3.5) (floor 3) (round -2.5))
(println (sqrt 16) (sqrt 2) (expt 2 10) (expt 2 -1) (expt 2.0 3))
(println (= 1 1.0) (= 1 2) (< 1 2 3) (< 1 3 2) (> 3 2 1) (<= 1 1 2) (>= 2 2 1) (= 2 2 2))
(println (number? 1) (number? 1.5) (number? "1") (integer? 1) (integer? 1.0) (float? 1.0) (float? 1))
(println (zero? 0) (zero? 0.0) (zero? 1) (even? 4) (even? 3) (odd? 3) (odd? -3))
(println 2.0 0.1 1e300 1.5e-7 -0.25 123456789.0 (* 1e10 1e10))
; expect-output: 0 1 -3 6 7 24 3.5 1.0
; expect-output: 2 0.5 0.25 0.5 2 3.5
; expect-output: 3 -3 -1 1 -1
; expect-output: 5 2.5 1 3 1.0 2.0
; expect-output: 2.0 3.0 2.0 4.0 3 -2.0
; expect-output: 4 1.4142135623730951 1024 0.5 8.0
; expect-output: #t #f #t #f #t #t #t #t
; expect-output: #t #t #f #t #f #t #f
; expect-output: #t #t #f #t #f #t #t
; expect-output: 2.0 0.1 1e300 1.5e-7 -0.25 123456789.0 1e20
(define (err-kind thunk) (try (thunk) (catch e (error-kind e))))
(println (err-kind (lambda () (/ 1 0))) (err-kind (lambda () (quotient 1 0))) (err-kind (lambda () (modulo 1 0))))
(println (err-kind (lambda () (+ 9223372036854775807 1))) (err-kind (lambda () (* 9223372036854775807 2))) (err-kind (lambda () (- -9223372036854775807 2))))
(println (err-kind (lambda () (expt 10 30))) (err-kind (lambda () (abs -9223372036854775808))))
(println (err-kind (lambda () (+ 1 "a"))) (err-kind (lambda () (< 1 'a))) (err-kind (lambda () (even? 1.5))) (err-kind (lambda () (-))))
(println (/ 1.0 0))
; expect-output: :division-by-zero :division-by-zero :division-by-zero
; expect-output: :overflow :overflow :overflow
; expect-output: :overflow :overflow
; expect-output: :type-error :type-error :type-error :arity-error
; expect-output: +inf.0
(try (+ 1 "a") (catch e (error-message e)))
; expect: "+ expects numbers, got \"a\" (a string)"
