; Error objects (R7RS 6.11) over the same errors try catches; raise of any object;
; with-exception-handler and raise-continuable.
(define (p x) (write x) (newline))
(define (caught thunk) (try (thunk) (catch e e)))
(define e1 (caught (lambda () (error "msg" 'a 2))))
(p (list (error-object? e1) (error-object-message e1) (error-object-irritants e1) (error-kind e1)))
; expect-output: (#t "msg" (a 2) :error)
(p (list (error-object? 5) (error-object? "s") (error-object? (caught (lambda () (car '()))))))
; expect-output: (#f #f #t)
(p (list (file-error? e1) (read-error? e1) (read-error? (caught (lambda () (read (open-input-string "(1 2"))))) (file-error? 'x)))
; expect-output: (#f #f #t #f)
(p (try (error-object-message 5) (catch e (error-message e))))
; expect-output: "error-object-message expects an error, got 5 (an integer)"
; raise of a non-error object: try sees an :error value whose message is the object
; displayed; guard sees the object.
(define e2 (caught (lambda () (raise (list 1 "two")))))
(p (list (error-kind e2) (error-message e2) (error-irritants e2)))
; expect-output: (:error "(1 two)" ((1 "two")))
(p (guard (e (#t e)) (raise (list 1 "two"))))
; expect-output: (1 "two")
; R7RS with-exception-handler examples.
(p (with-exception-handler
    (lambda (con) 42)
    (lambda () (+ (raise-continuable 'oops) 23))))
; expect-output: 65
(p (call-with-current-continuation
    (lambda (k)
      (with-exception-handler
       (lambda (e) (k (list 'condition e)))
       (lambda () (+ 1 (raise 'an-error)))))))
; expect-output: (condition an-error)
(p (call/cc (lambda (k)
              (with-exception-handler
               (lambda (e) (k (error-object-message e)))
               (lambda () (vector-ref-like (car 1)))))))
; expect-output: "car expects a pair, got 1 (an integer)"
; Returning from the handler of a non-continuable raise is an error.
(p (try (with-exception-handler (lambda (e) 'ignored) (lambda () (raise 'boom)))
        (catch e (error-message e))))
; expect-output: "with-exception-handler: the handler returned from a non-continuable raise of"
; The handler runs with the outer handler installed.
(p (with-exception-handler
    (lambda (e) (list 'outer e))
    (lambda ()
      (with-exception-handler
       (lambda (e) (raise-continuable (list 'inner e)))
       (lambda () (raise-continuable 'x))))))
; expect-output: (outer (inner x))
; raise-continuable without a handler is raise.
(p (guard (e (#t (list 'got e))) (raise-continuable 'nobody)))
; expect-output: (got nobody)
(p (try (with-exception-handler 5 (lambda () 1)) (catch e (error-message e))))
; expect-output: "with-exception-handler expects a procedure, got 5 (an integer)"
