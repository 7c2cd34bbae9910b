; a local function calling itself (not in a tail position) past max_depth: the same
; stack overflow and trace as a closure call
(define (outer n)
  (define (deep i) (+ 1 (deep (+ i 1))))
  (list (deep n)))
(outer 0)
; expect-error: :stack-overflow
; expect-error-line: error[:stack-overflow]: stack overflow: call depth exceeds max_depth (100000)
; expect-error-line:   at deep (tests/scripts/forms/self_cell_overflow.lisp:4:25)
; expect-error-line:   at ... 99976 frames omitted
; expect-error-line:   at outer (tests/scripts/forms/self_cell_overflow.lisp:5:9)
; expect-error-line:   at <top> (tests/scripts/forms/self_cell_overflow.lisp:6:1)
