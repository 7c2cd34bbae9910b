; A child task starts with its parent's handlers behind a mark: a raise in the child does not
; call them before it unwinds (the child's finally runs first); the parent's handler sees the
; error when it awaits the child, like a builtin's error. raise-continuable in the child still
; reaches the parent's handler.
(define (p x) (write x) (newline))
(define log '())
(define (note x) (set! log (cons x log)))
(p (call/cc
    (lambda (k)
      (with-exception-handler
       (lambda (e) (note (list 'handler e)) (k 'escaped))
       (lambda ()
         (await (async (lambda () (try (raise 'in-child) (finally (note 'child-finally)))))))))))
; expect-output: escaped
(p (reverse log))
; expect-output: (child-finally (handler in-child))
(p (with-exception-handler
    (lambda (e) (list 'continued e))
    (lambda () (await (async (lambda () (raise-continuable 'ask)))))))
; expect-output: (continued ask)
; The child's own handlers are called before it unwinds.
(set! log '())
(p (await (async (lambda ()
                   (call/cc
                    (lambda (k)
                      (with-exception-handler
                       (lambda (e) (note 'child-handler) (k e))
                       (lambda () (try (raise 'own) (finally (note 'finally)))))))))))
; expect-output: own
(p (reverse log))
; expect-output: (child-handler finally)
