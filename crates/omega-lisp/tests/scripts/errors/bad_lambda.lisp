(lambda (a a) a)
; expect-error: :syntax duplicate parameter a
