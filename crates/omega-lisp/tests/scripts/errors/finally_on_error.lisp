(try (car 1) (finally (println "cleanup ran")))
; expect-output: cleanup ran
; expect-error: :type-error car expects a pair
