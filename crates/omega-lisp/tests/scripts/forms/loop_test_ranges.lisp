; a loop's folded exit test on an integer constant (`Edge` with the test's range decoded at
; compile time, and the counter's new value tested at once in the counter-and-accumulator
; shape): every comparison, negated or not, at the edges of the integers, gives the plain
; test's result; a test on the accumulator, a float counter, a redefined `<` mid-loop
(define (count-lt n) (let loop ((i n) (s 0)) (if (< i 0) s (loop (- i 1) (+ i s)))))
(define (count-le n) (let loop ((i n) (s 0)) (if (<= i 0) s (loop (- i 1) (+ i s)))))
(define (count-eq n) (let loop ((i n) (s 0)) (if (= i 0) s (loop (- i 1) (+ i s)))))
(define (count-gt n) (let loop ((i n) (s 0)) (if (> i 5) s (loop (+ i 1) (+ i s)))))
(define (count-ge n) (let loop ((i n) (s 0)) (if (>= i 5) s (loop (+ i 1) (+ s i)))))
(define (count-not-lt n) (let loop ((i n) (s 0)) (if (not (< i 5)) s (loop (+ i 1) (+ i s)))))
(define (count-not-eq n) (let loop ((i n) (s 0)) (if (not (= i 0)) (loop (- i 1) (+ i s)) s)))
(println (count-lt 10) (count-le 10) (count-eq 10) (count-gt 0) (count-ge 0) (count-not-lt 0) (count-not-eq 10))
(println (count-lt -3) (count-le 0) (count-gt 9) (count-ge 5) (count-not-lt 7))
; constants at the ends of the integers (a test that never or always holds)
(define (never-below n) (let loop ((i n) (s 0)) (if (< i -9223372036854775808) s (if (= i 0) (list 'end s) (loop (- i 1) (+ i s))))))
(define (always-le n) (let loop ((i n) (s 0)) (if (<= i 9223372036854775807) (list 'le s) (loop (- i 1) (+ i s)))))
(define (not-ge-min n) (let loop ((i n) (s 0)) (if (not (>= i -9223372036854775808)) s (if (= i 0) (list 'end s) (loop (- i 1) (+ i s))))))
(define (above-max n) (let loop ((i n) (s 0)) (if (> i 9223372036854775807) s (if (= i 0) (list 'end s) (loop (- i 1) (+ i s))))))
(define (eq-max n) (let loop ((i n) (s 0)) (if (= i 9223372036854775807) (list 'max s) (loop (+ i 1) (+ 1 s)))))
(println (never-below 4) (always-le 4) (not-ge-min 4) (above-max 4) (eq-max 9223372036854775804))
(define (down-to-min n) (let loop ((i n) (s 0)) (if (< i -9223372036854775806) (list i s) (loop (- i 1) (+ 1 s)))))
(println (down-to-min -9223372036854775800))
; the test on the accumulator, not the counter; on two locals; a float counter
(define (acc-test n) (let loop ((i n) (s 0)) (if (> s 20) (list i s) (loop (- i 1) (+ i s)))))
(define (two-locals n m) (let loop ((i n) (s 0)) (if (< i m) s (loop (- i 1) (+ i s)))))
(define (float-count n) (let loop ((i n) (s 0.0)) (if (< i 0) s (loop (- i 1.0) (+ i s)))))
(println (acc-test 10) (two-locals 10 4) (float-count 4.5) (count-lt 3.5))
; a counter that stops being an integer, an overflow, a redefined comparison mid-loop
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(println (err (lambda () (let loop ((i 3) (s 0)) (if (< i 0) s (loop (- i 1) (+ i (if (= i 1) "x" s))))))))
(println (err (lambda () (let loop ((i -9223372036854775807) (s 0)) (if (> i 0) s (loop (- i 1) (+ i s)))))))
(define (redefine-lt n)
  (let loop ((i n) (s 0))
    (if (< i 0)
        s
        (begin
          (if (= i 2) (set! < (lambda (a b) (if (= a 1) #t #f))))
          (loop (- i 1) (+ i s))))))
(println (redefine-lt 5))
; a float counter tested at once against float and integer constants, negated or not
(define (float-gt n) (let loop ((i n) (s 0.0)) (if (not (> i 0.5)) (list i s) (loop (- i 1.0) (+ i s)))))
(define (float-eq n) (let loop ((i n) (s 0.0)) (if (= i 1) (list i s) (loop (- i 0.5) (+ s i)))))
(define (float-vs-local n m) (let loop ((i n) (s 0.0)) (if (<= i m) (list i s) (loop (- i 1.0) (+ i s)))))
(println (float-gt 3.0) (float-eq 3.0) (float-vs-local 5.0 2) (float-gt 2))
; expect-output: 55 55 55 15 10 10 55
; expect-output: 0 0 0 0 0
; expect-output: (end 10) (le 0) (end 10) (end 10) (max 3)
; expect-output: (-9223372036854775807 7)
; expect-output: (7 27) 49 12.5 8.0
; expect-output: (:type-error + expects numbers, got "x" (a string))
; expect-output: (:overflow integer overflow in -)
; expect-output: 14
; expect-output: (0.0 6.0) (1.0 9.0) (2.0 12.0) (0.0 3.0)
