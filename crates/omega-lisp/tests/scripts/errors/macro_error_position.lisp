; an error raised while a macro (here the prelude's define-record-type) expands names the use
; in the user's file as the outermost frame of its stack
(define-record-type point
  (make-point x y)
  point?
  (x point-x))
; expect-error: :syntax
; expect-error-line: error[:syntax]: define-record-type: make-point names y, which is not a field
; expect-error-line:   at expansion of define-record-type (tests/scripts/errors/macro_error_position.lisp:3:1)
