; an error under calls of a function by itself shows one line per call
(define (down n)
  (if (= n 0)
      (car n)
      (+ 1 (down (- n 1)))))
(define (tail-down n) (if (= n 0) (down 2) (tail-down (- n 1))))
(tail-down 3)
; expect-error: :type-error
; expect-error-line: error[:type-error]: car expects a pair, got 0 (an integer)
; expect-error-line:   at down (tests/scripts/errors/self_call_trace.lisp:4:7)
; expect-error-line:   at down (tests/scripts/errors/self_call_trace.lisp:5:12)
; expect-error-line:   at <top> (tests/scripts/errors/self_call_trace.lisp:7:1)
