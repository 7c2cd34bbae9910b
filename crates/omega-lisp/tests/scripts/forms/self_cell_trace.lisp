; an error deep in calls of local functions by themselves (tail calls jump, other calls keep
; the code loaded) shows the same stack trace as the closure calls did
(define (outer n)
  (define (tail-down i) (if (= i 0) (car i) (tail-down (- i 1))))
  (define (down i)
    (if (= i 0)
        (+ 1 (tail-down 2))
        (+ 1 (down (- i 1)))))
  (list (down n)))
(outer 3)
; expect-error: :type-error
; expect-error-line: error[:type-error]: car expects a pair, got 0 (an integer)
; expect-error-line:   at tail-down (tests/scripts/forms/self_cell_trace.lisp:4:37)
; expect-error-line:   at down (tests/scripts/forms/self_cell_trace.lisp:7:14)
; expect-error-line:   at down (tests/scripts/forms/self_cell_trace.lisp:8:14)
; expect-error-line:   at down (tests/scripts/forms/self_cell_trace.lisp:8:14)
; expect-error-line:   at down (tests/scripts/forms/self_cell_trace.lisp:8:14)
; expect-error-line:   at outer (tests/scripts/forms/self_cell_trace.lisp:9:9)
; expect-error-line:   at <top> (tests/scripts/forms/self_cell_trace.lisp:10:1)
