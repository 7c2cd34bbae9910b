; guard (R7RS 4.2.7): clauses like cond (else, =>); no match re-raises. The variable is the
; raised object itself, or the error value for errors (error-object? on it).
(define (p x) (write x) (newline))
(p (guard (condition
           ((assq 'a condition) => cdr)
           ((assq 'b condition)))
     (raise (list (cons 'a 42)))))
; expect-output: 42
(p (guard (condition
           ((assq 'a condition) => cdr)
           ((assq 'b condition)))
     (raise (list (cons 'b 23)))))
; expect-output: (b . 23)
(p (guard (e ((symbol? e) (list 'sym e)) ((string? e) (list 'str e))) (raise "boom")))
; expect-output: (str "boom")
(p (guard (e (#t (list (error-object? e) (error-object-message e) (error-object-irritants e))))
     (error "Something bad" 1 2)))
; expect-output: (#t "Something bad" (1 2))
(p (guard (e ((error-object? e) (error-kind e))) (car 5)))
; expect-output: :type-error
(p (guard (e (else 'fallback)) (raise 'oops)))
; expect-output: fallback
; No error: the body's value; internal definitions work in the body.
(p (guard (e (#t 'never)) (define x 3) (* x x)))
; expect-output: 9
; No clause matches: re-raised to the outer guard, with the same object.
(p (guard (outer ((number? outer) (list 'outer outer)))
     (guard (inner ((string? inner) 'inner)) (raise 7))))
; expect-output: (outer 7)
; ... and to try, which sees the error value.
(p (try (guard (e ((string? e) 'no)) (error :my-kind "kept" 5))
        (catch e (list (error-kind e) (error-message e) (error-irritants e)))))
; expect-output: (:my-kind "kept" (5))
; finally blocks and after-thunks inside run before the clauses.
(define trail '())
(p (list (guard (e (#t (set! trail (cons 'clause trail)) e))
           (dynamic-wind (lambda () #f)
                         (lambda () (raise 'x))
                         (lambda () (set! trail (cons 'after trail)))))
         (reverse trail)))
; expect-output: (x (after clause))
; raise-continuable inside guard goes to the guard.
(p (guard (e (#t (list 'guarded e)))
     (with-exception-handler (lambda (c) 'handler)
       (lambda () (guard (e2 ((number? e2) (list 'inner e2))) (raise-continuable 1))))))
; expect-output: (inner 1)
; A guard does not catch an escape.
(p (call/cc (lambda (k) (guard (e (#t 'caught)) (k 'escaped)))))
; expect-output: escaped
; A clause body's error goes outward.
(p (guard (e (#t (list 'outer (error-object-message e))))
     (guard (e (#t (error "from clause"))) (raise 1))))
; expect-output: (outer "from clause")
; Tail of a loop: guard in a loop does not grow anything.
(p (let loop ((i 0) (n 0)) (if (= i 1000) n (loop (+ i 1) (+ n (guard (e (#t 1)) (raise i)))))))
; expect-output: 1000
