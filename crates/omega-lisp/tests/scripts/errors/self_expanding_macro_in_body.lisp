; A macro that expands to itself at the start of a body fails like any too-deep form.
(defmacro self () '(self))
(define (k) (self) 1)
; expect-error: :syntax form nested too deeply to compile
