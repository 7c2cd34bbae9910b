; an uncaught index error names the index, the length and the position of the call
(define text "naïve")
(string-ref text 5)
; expect-error: :error string-ref: index 5 out of range for a string of length 5
; expect-error-line:   at <top> (tests/scripts/scheme/string_ref_range.lisp:3:1)
