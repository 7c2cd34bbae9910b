; Promises (R7RS 4.2.5): delay, force, make-promise, delay-force, promise?.
(define (p x) (write x) (newline))
(p (force (delay (+ 1 2))))
; expect-output: 3
(p (let ((pr (delay (+ 1 2)))) (list (force pr) (force pr))))
; expect-output: (3 3)
; Evaluated once.
(define count 0)
(define pr (delay (begin (set! count (+ count 1)) count)))
(p (list (force pr) (force pr) count))
; expect-output: (1 1 1)
; Streams (R7RS).
(define integers
  (letrec ((next (lambda (n) (delay (cons n (next (+ n 1)))))))
    (next 0)))
(define (head stream) (car (force stream)))
(define (tail stream) (cdr (force stream)))
(p (head (tail (tail integers))))
; expect-output: 2
(define (stream-filter p? s)
  (delay-force
   (if (null? (force s))
       (delay '())
       (let ((h (car (force s))) (t (cdr (force s))))
         (if (p? h)
             (delay (cons h (stream-filter p? t)))
             (stream-filter p? t))))))
(p (head (tail (tail (stream-filter odd? integers)))))
; expect-output: 5
; A promise that forces itself re-entrantly (R7RS): the first value wins.
(define n 0)
(define x 5)
(define p2 (delay (begin (set! n (+ n 1)) (if (> n x) n (force p2)))))
(p (force p2))
; expect-output: 6
(p (begin (set! x 10) (force p2)))
; expect-output: 6
; make-promise, promise?, force of a non-promise.
(p (list (force (make-promise 7)) (promise? (make-promise 7)) (promise? (delay 1)) (promise? 5)
         (force 8) (let ((q (delay 1))) (eq? q (make-promise q)))))
; expect-output: (7 #t #t #f 8 #t)
; delay of a promise gives that promise (not its value).
(p (promise? (force (delay (delay 1)))))
; expect-output: #t
; A long delay-force chain runs in constant stack.
(define (loop k) (delay-force (if (= k 0) (delay 'done) (loop (- k 1)))))
(p (force (loop 200000)))
; expect-output: done
; An error in the thunk propagates and the promise can be forced again.
(define tries 0)
(define flaky (delay (begin (set! tries (+ tries 1)) (if (< tries 2) (error "not yet") 'ok))))
(p (list (try (force flaky) (catch e (error-message e))) (force flaky) (force flaky)))
; expect-output: ("not yet" ok ok)
; delay-force of a non-promise.
(p (try (force (delay-force 5)) (catch e (error-message e))))
; expect-output: "force expects the expression of delay-force to yield a promise, got 5 (an integer)"
(p (delay 1))
; expect-output: #<promise>
