(define (writeln x) (write x) (newline))
(println (try (+ 1 2) (catch e 'caught)))
(println (try (car 1) (catch e (error-kind e))))
(writeln (try (error :my-kind "boom" 1 2) (catch e (list (error-kind e) (error-message e) (error-irritants e)))))
(try (println "body") (finally (println "finally on success")))
(println (try (try (error "inner") (finally (println "finally on error"))) (catch e (error-message e))))
(println (try (try (error "a") (catch e (error "b"))) (catch e (error-message e))))
(println (try (raise :custom "raised") (catch e (error-kind e))))
(writeln (try (try (error :x "orig") (catch e (raise e))) (catch e (list (error-kind e) (error-message e)))))
(println (error? (try (/ 1 0) (catch e e))))
(define (deep n) (if (= n 0) (error "bottom") (+ 1 (deep (- n 1)))))
(println (try (deep 100) (catch e (error-message e))))
(println (+ 1 (try 2 (catch e 0) (finally 99))))
(println (try (raise "plain") (catch e (error-message e))))
; expect-output: 3
; expect-output: :type-error
; expect-output: (:my-kind "boom" (1 2))
; expect-output: body
; expect-output: finally on success
; expect-output: finally on error
; expect-output: inner
; expect-output: b
; expect-output: :custom
; expect-output: (:x "orig")
; expect-output: #t
; expect-output: bottom
; expect-output: 3
; expect-output: plain
(let loop ((i 0)) (if (< i 10000) (begin (try (error "x") (catch e e)) (loop (+ i 1))) i))
; expect: 10000
