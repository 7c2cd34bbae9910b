(define x 1)
(display "never closed)
; expect-error: :syntax tests/scripts/read/unterminated_string.lisp:2:10: unterminated string
