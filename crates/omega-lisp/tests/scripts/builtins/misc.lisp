(define (writeln x) (write x) (newline))
(println (symbol? (gensym)) (symbol? (gensym "pre")) (integer? (now-ms)) (> (now-ms) 1600000000000))
(define r (random 10))
(println (and (>= r 0) (< r 10)) (float? (random)) (< (random 2.5) 2.5))
(writeln (list (assert #t) (try (assert (= 1 2) "math") (catch e (list (error-kind e) (error-message e))))))
(writeln (try (error "msg" 1 "two") (catch e (list (error-kind e) (error-message e) (error-irritants e)))))
(println (try (error :k "m") (catch e e)))
(println (error-kind (try (raise :io "disk") (catch e e))) (error-message (try (raise 'sym) (catch e e))))
(println (try (error-message 5) (catch e (error-message e))))
; expect-output: #t #t #t #t
; expect-output: #t #t #t
; expect-output: (#t (:assertion "assertion failed: math"))
; expect-output: (:error "msg" (1 "two"))
; expect-output: #<error :k "m">
; expect-output: :io sym
; expect-output: error-message expects an error, got 5 (an integer)
(error :my-kind "custom failure" 42)
; expect-error: :my-kind custom failure 42
