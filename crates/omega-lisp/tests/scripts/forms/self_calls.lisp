; calls of the running closure by itself (VM invariant 9): tail calls restart the frame,
; other calls keep the code loaded; everything that replaces or removes a frame must leave
; the frames below it running the right closure
(define (count-down n acc)
  (if (= n 0)
      acc
      (begin
        (if (= n 5) (set! count-down (lambda (n acc) (list 'new n acc))))
        (count-down (- n 1) (+ acc 1)))))
(println (count-down 10 0))
(println (let ((loop #f))
           (set! loop (lambda (n acc) (if (= n 0) acc (loop (- n 1) (cons n acc)))))
           (loop 5 '())))
(define (other x) (* x 10))
(define (then-other n) (if (= n 0) (other 7) (+ 1 (then-other (- n 1)))))
(println (then-other 3))
(define (then-native n) (if (= n 0) (list 1 2) (cons n (then-native (- n 1)))))
(println (then-native 3))
(define (then-apply n) (if (= n 0) (apply other (list 5)) (+ 1 (then-apply (- n 1)))))
(println (then-apply 2))
(define (catch-at-3 n)
  (if (= n 0)
      (error "boom")
      (try (+ 1 (catch-at-3 (- n 1)))
           (catch e (if (= n 3) 100 (raise e))))))
(println (catch-at-3 5))
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(println (fib 20))
(define (redefine-inside n)
  (if (= n 0)
      (begin (set! redefine-inside (lambda (n) 'replaced)) 0)
      (+ 1 (redefine-inside (- n 1)))))
(println (redefine-inside 3))
(println (redefine-inside 3))
; expect-output: (new 4 6)
; expect-output: (1 2 3 4 5)
; expect-output: 73
; expect-output: (3 2 1 1 2)
; expect-output: 52
; expect-output: 102
; expect-output: 6765
; expect-output: 3
; expect-output: replaced
