; syntax-rules templates over Omega's own forms: try/catch/finally (an introduced catch
; variable is private), with-timeout, with-lock, async/await-all, case-lambda.
(define-syntax safe
  (syntax-rules ()
    ((_ body ...)
     (try (begin body ...)
          (catch e (list :caught (error-message e)))
          (finally (println "cleanup"))))))
(define e 'user-e)
(println (safe (error "boom")))
(println (safe e))
; expect-output: cleanup
; expect-output: (:caught boom)
; expect-output: cleanup
; expect-output: user-e
(define-syntax timed (syntax-rules () ((_ ms body ...) (with-timeout ms body ...))))
(println (try (timed 10 (sleep 1000)) (catch err (error-kind err))))
; expect-output: :timeout
(define-syntax locked (syntax-rules () ((_ name body ...) (with-lock name :mode :write body ...))))
(println (locked "res" (+ 1 2)))
; expect-output: 3
(define-syntax both
  (syntax-rules () ((_ a b) (await-all (list (async (lambda () a)) (async (lambda () b)))))))
(println (both (+ 1 1) (* 3 3)))
; expect-output: (2 9)
(define-syntax with-default
  (syntax-rules () ((_ x) (case-lambda ((a) (list a x)) ((a b) (list a b x))))))
(println ((with-default 'z) 1) ((with-default 'z) 1 2))
; expect-output: (1 z) (1 2 z)
