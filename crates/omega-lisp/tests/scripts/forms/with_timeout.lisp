; with-timeout runs its body as a child task with a deadline.
(println (with-timeout 1000 (+ 1 2)))
(println (try (with-timeout 10 (sleep 5000)) (catch e (error-kind e))))
; expect-output: 3
; expect-output: :timeout
