; with-lock / with-locks / with-timeout are reserved for the async layer (a later issue)
(println (try (with-lock "r" 1) (catch e (error-kind e))))
(with-timeout 100 (+ 1 2))
; expect-output: :unsupported
; expect-error: :unsupported with-timeout is not available in this runtime yet
