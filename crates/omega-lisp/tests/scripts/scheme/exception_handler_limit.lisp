; A :limit error passes every handler: with-exception-handler never calls its handler for one,
; before or after unwinding, and no catch stops it.
(define called #f)
(with-exception-handler
 (lambda (e) (set! called #t) 'handled)
 (lambda () (try (error :limit "a limit") (catch e 'caught))))
; expect-error: :limit a limit
