; guard with no matching clause re-raises: uncaught, the report shows the raised object.
(define (f) (guard (e ((string? e) 'no)) (raise 'unhandled-thing)))
(f)
; expect-error: :error unhandled-thing
