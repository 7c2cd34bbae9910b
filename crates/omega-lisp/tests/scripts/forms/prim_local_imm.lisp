; `(OP local small-int)` (`PrimLI`), its tests (`BranchLI`), `(< local local)` tests
; (`BranchLL`), a local with a float constant (`PrimLK`, `BranchLK`), float and integer
; results returned by `PrimReturn` (over `Call` and `CallGlobal` frames) and self tail calls
; (`Stack::restart`): integers, floats, an overflow, a non-number and a redefined primitive
; all give what the generic primitive gives
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (dec n) (- n 1))
(define (dec3 n) (- n -3))
(define (inc n) (+ n 1))
(define (dec-f x) (- x 1.5))
(define (lt-f x) (if (< x 2.0) 'lt 'ge))
(println (dec 10) (dec -5) (dec3 4) (inc 41))
(println (dec 2.5) (dec3 0.5))
(println (err (lambda () (dec -9223372036854775808))))
(println (err (lambda () (dec3 9223372036854775806))))
(println (first (err (lambda () (dec "x")))))
(define (count n) (if (< n 1) 'done (count (- n 1))))
(println (count 100000))
; a float `PrimReturn` over a frame that keeps its callee below its arguments (`Call`)
(define (via f x) (+ 1 (f x)))
(println (via (lambda (x) (+ (* x 2) 0.5)) 1) (via (lambda (x) (- (* x 1.0) 0.75)) 1)
         (via (lambda (x) (* (+ x 1) 0.5)) 4))
(define (fibfp n) (if (< n 2.0) n (+ (fibfp (- n 1.0)) (fibfp (- n 2.0)))))
(println (fibfp 15.0))
; `-` redefined: the compiled (- n 1) calls the new definition
(define real- -)
(set! - (lambda (a b) (list 'minus a b)))
(println (dec 10) (dec 2.5) (dec-f 4.0))
(set! - real-)
(println (dec 10))
(define (lt2 n) (if (< n 2) 'lt 'ge))
(define (eq0 n) (if (= n 0) 'zero 'other))
(define (not-lt2 n) (if (not (< n 2)) 'ge 'lt))
(println (lt2 1) (lt2 2) (lt2 -7) (lt2 1.5) (lt2 2.0) (not-lt2 1) (not-lt2 3))
(println (eq0 0) (eq0 3) (eq0 0.0) (eq0 -0.0) (eq0 0.5))
(println (first (err (lambda () (lt2 "x")))) (first (err (lambda () (eq0 'a)))))
(define (tak x y z)
  (if (not (< y x)) z (tak (tak (- x 1) y z) (tak (- y 1) z x) (tak (- z 1) x y))))
(define (lt a b) (if (< a b) 'lt 'ge))
(println (tak 12 8 4) (tak 12.0 8 4.5) (lt 1 2) (lt 2 1) (lt 1 1.5) (lt 2.5 2))
(println (first (err (lambda () (lt 1 "x")))))
(define real-not not)
(set! not (lambda (x) 'never))
(println (tak 3 2 1))
(set! not real-not)
(println (dec-f 4.0) (dec-f 4) (dec-f -0.5) (lt-f 1.5) (lt-f 2.0) (lt-f 1) (lt-f 3))
(println (first (err (lambda () (dec-f "x")))) (first (err (lambda () (lt-f 'a)))))
(define real< <)
(define real= =)
(set! < (lambda (a b) (list a b)))
(set! = (lambda (a b) #f))
(println (lt2 5) (eq0 0) (lt 3 2) (lt-f 3.0))
(set! < real<)
(set! = real=)
(println (lt2 5) (eq0 0) (lt 3 2) (lt-f 3.0))
; expect-output: 9 -6 7 42
; expect-output: 1.5 3.5
; expect-output: (:overflow integer overflow in -)
; expect-output: (:overflow integer overflow in -)
; expect-output: :type-error
; expect-output: done
; expect-output: 3.5 1.25 3.5
; expect-output: 610.0
; expect-output: (minus 10 1) (minus 2.5 1) (minus 4.0 1.5)
; expect-output: 9
; expect-output: lt ge lt lt ge lt ge
; expect-output: zero other zero zero other
; expect-output: :type-error :type-error
; expect-output: 5 5 lt ge lt ge
; expect-output: :type-error
; expect-output: 1
; expect-output: 2.5 2.5 -2.0 lt ge lt ge
; expect-output: :type-error :type-error
; expect-output: lt other lt lt
; expect-output: ge zero ge ge
