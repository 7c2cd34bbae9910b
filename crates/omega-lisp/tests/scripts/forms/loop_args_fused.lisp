; a loop's back edge whose arguments are numbers computed from locals and constants is one op
; (`JumpLoopNum`); anything off its fast path (a non-number, an overflow, a redefined
; primitive) falls back on the argument ops one by one: the values, the first error in argument
; order and redefinitions are those of the plain code (calls with such arguments alongside)
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (f3 a b c) (list a b c))
(define (mix x y) (f3 (+ x 1) (* x y) (- y 0.5)))
(println (mix 2 3) (mix 1.5 2) (mix 2 2.0))
(println (err (lambda () (mix "a" 2))) (err (lambda () (mix 2 "b"))))
(println (err (lambda () (mix 4611686018427387904 4))))
(define (pairs l) (f3 (car l) (cdr l) (null? l)))
(println (pairs '(1 2)) (err (lambda () (pairs 5))))
; a loop whose arguments overflow, stop being numbers, or meet a redefined `+`, mid-loop
(define (sum-to n) (let loop ((i n) (acc 0)) (if (= i 0) acc (loop (- i 1) (+ acc i)))))
(println (sum-to 100) (err (lambda () (let loop ((i 3) (acc 4611686018427387904)) (if (= i 0) acc (loop (- i 1) (+ acc acc)))))))
(println (err (lambda () (let loop ((i 3) (acc 1)) (if (= i 0) acc (loop (- i 1) (if (= i 1) "x" (+ acc 1))))))))
(println (let loop ((i 3) (acc 0.5)) (if (= i 0) acc (loop (- i 1) (+ acc i)))))
(println (err (lambda () (let loop ((i 3) (acc 0)) (if (= i 0) acc (loop (- i "1") (+ acc i)))))))
(println (err (lambda () (let loop ((i 4) (acc '(1 2 3))) (if (= i 0) acc (loop (- i 1) (cdr acc)))))))
; the first argument's error is the one raised, as without the fusion
(println (err (lambda () (f3 (car 1) (cdr 2) 3))) (err (lambda () (f3 1 (+ 'a 1) (- 'b 1)))))
; a closure call (operator a local) and a self tail call
(define (apply-pair k x y) (k (+ x 1) (- y 1)))
(println (apply-pair list 1 2) (apply-pair + 10 20))
(define (count l n) (if (null? l) n (count (cdr l) (+ n 1))))
(println (count '(a b c d) 0) (err (lambda () (count 7 0))))
(define (swap-count n)
  (let loop ((i n) (a 1) (b 2.5) (c 0))
    (if (= i 0) (list a b c) (loop (- i 1) b a (+ c i)))))
(println (swap-count 3) (swap-count 4))
(define (redefine-mid n acc)
  (if (= n 0)
      acc
      (begin
        (if (= n 2) (set! + (lambda (a b) (list 'plus a b))))
        (redefine-mid (- n 1) (+ acc n)))))
(println (redefine-mid 4 0))
(define (redefine-in-loop n)
  (let loop ((i n) (acc 0))
    (if (= i 0)
        acc
        (begin
          (if (= i 2) (set! - (lambda (a b) (if (= a 2) 0 'never))))
          (loop (- i 1) (+ acc i))))))
(println (redefine-in-loop 5))
; expect-output: (3 6 2.5) (2.5 3.0 1.5) (3 4.0 1.5)
; expect-output: (:type-error + expects numbers, got "a" (a string)) (:type-error * expects numbers, got "b" (a string))
; expect-output: (:overflow integer overflow in *)
; expect-output: (1 (2) #f) (:type-error car expects a pair, got 5 (an integer))
; expect-output: 5050 (:overflow integer overflow in +)
; expect-output: x
; expect-output: 6.5
; expect-output: (:type-error - expects numbers, got "1" (a string))
; expect-output: (:type-error cdr expects a pair, got nil (nil))
; expect-output: (:type-error car expects a pair, got 1 (an integer)) (:type-error + expects numbers, got a (a symbol))
; expect-output: (2 1) 30
; expect-output: 4 (:type-error cdr expects a pair, got 7 (an integer))
; expect-output: (2.5 1 6) (1 2.5 10)
; expect-output: (plus (plus 7 2) 1)
; expect-output: (plus (plus (plus (plus 0 5) 4) 3) 2)
