; with-exception-handler (R7RS 6.11): raise and error called from Lisp call the handler in the
; dynamic environment of the raise, before unwinding, so dynamic-wind after-thunks and finally
; blocks run after it; errors raised by builtins unwind first (documented in
; scheme_prelude.lisp).
(define (p x) (write x) (newline))
(define log '())
(define (note x) (set! log (cons x log)))
(define (take-log) (let ((l (reverse log))) (set! log '()) l))

; raise: handler first, then the after-thunk, as the handler escapes.
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (note (list 'handler e)) (k 'escaped))
       (lambda ()
         (dynamic-wind
          (lambda () (note 'before))
          (lambda () (raise 'boom))
          (lambda () (note 'after))))))))
; expect-output: escaped
(p (take-log))
; expect-output: (before (handler boom) after)

; error: the handler gets the error object, before the finally block runs.
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (note 'handler) (k (error-object-message e)))
       (lambda ()
         (try (error "bad thing" 1)
              (finally (note 'finally))))))))
; expect-output: "bad thing"
(p (take-log))
; expect-output: (handler finally)

; A builtin's error unwinds first: the after-thunk, then the handler.
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (note 'handler) (k (error-kind e)))
       (lambda ()
         (dynamic-wind
          (lambda () #f)
          (lambda () (car 1))
          (lambda () (note 'after))))))))
; expect-output: :type-error
(p (take-log))
; expect-output: (after handler)

; The handler sees the dynamic environment of the raise: a parameter bound there.
(define depth (make-parameter 0))
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (k (list 'depth-at-raise (depth))))
       (lambda () (parameterize ((depth 3)) (raise 'x)))))))
; expect-output: (depth-at-raise 3)

; A handler that returns: the secondary error goes to the next handler out, also before
; unwinding; each handler is called once.
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (note (list 'outer (error-object-message e))) (k 'outer-escaped))
       (lambda ()
         (with-exception-handler
          (lambda (e) (note (list 'inner e)) 'returned)
          (lambda ()
            (dynamic-wind
             (lambda () #f)
             (lambda () (raise 'first))
             (lambda () (note 'after))))))))))
; expect-output: outer-escaped
(p (take-log))
; expect-output: ((inner first) (outer "with-exception-handler: the handler returned from a non-continuable raise of") after)

; With no outer handler, the secondary error unwinds to a try, past the handler that
; returned: it is not called again.
(p (try (with-exception-handler
         (lambda (e) (note (list 'handler e)) 'ignored)
         (lambda () (try (raise 'boom) (finally (note 'finally)))))
        (catch e (list (error-message e) (error-irritants e)))))
; expect-output: ("with-exception-handler: the handler returned from a non-continuable raise of" (boom))
(p (take-log))
; expect-output: ((handler boom) finally)

; An error raised inside the handler goes to the handlers outside it, not to itself.
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (k (list 'outer-got e)))
       (lambda ()
         (with-exception-handler
          (lambda (e) (note (list 'inner e)) (raise (list 'from-inner e)))
          (lambda () (raise 'x))))))))
; expect-output: (outer-got (from-inner x))
(p (take-log))
; expect-output: ((inner x))

; A builtin error inside the handler also goes outward only (after unwinding the handler).
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (k (list 'outer-got (error-kind e))))
       (lambda ()
         (with-exception-handler
          (lambda (e) (note 'inner) (car e))
          (lambda () (raise 'x))))))))
; expect-output: (outer-got :type-error)
(p (take-log))
; expect-output: (inner)

; A guard between the raise and the handler takes the error: the handler is not called.
(p (with-exception-handler
    (lambda (e) (note 'handler) 'h)
    (lambda () (guard (e (#t (list 'guarded e))) (raise 'g)))))
; expect-output: (guarded g)
; A guard's re-raise (no clause matched) reaches the handler outside it before unwinding on.
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (note (list 'handler e)) (k 'escaped))
       (lambda ()
         (try (guard (e ((string? e) 'string)) (raise 'not-a-string))
              (finally (note 'finally))))))))
; expect-output: escaped
(p (take-log))
; expect-output: ((handler not-a-string) finally)

; try and guard are unchanged: an error inside them never reaches an outer handler.
(p (with-exception-handler
    (lambda (e) (note 'handler) 'h)
    (lambda () (try (error "caught by try") (catch e (error-message e))))))
; expect-output: "caught by try"
(p (take-log))
; expect-output: nil

; raise-continuable is unchanged: the handler's value is returned where it was raised.
(p (with-exception-handler
    (lambda (e) (* e 10))
    (lambda () (+ 1 (raise-continuable 4)))))
; expect-output: 41

; Leaving a try by an escape restores the handlers: a later raise calls the handler first.
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (k (list 'handled e (take-log))))
       (lambda ()
         (call/cc (lambda (out) (try (out 'left) (catch e 'never))))
         (dynamic-wind
          (lambda () #f)
          (lambda () (raise 'after-escape))
          (lambda () (note 'after))))))))
; expect-output: (handled after-escape nil)
(p (take-log))
; expect-output: (after)
