; dynamic-wind (R7RS 6.10): the after-thunk runs however the thunk is left — normal return,
; error, escape to a continuation — and in order, innermost first.
(define (p x) (write x) (newline))
(define trail '())
(define (note x) (set! trail (cons x trail)))
(define (trail!) (let ((t (reverse trail))) (set! trail '()) t))
; R7RS example (escape-only part): the escape runs the after-thunk once.
(p (let ((path '())
         (c #f))
     (let ((add (lambda (s) (set! path (cons s path)))))
       (dynamic-wind
        (lambda () (add 'connect))
        (lambda () (add (call-with-current-continuation (lambda (c0) (set! c c0) 'talk1))))
        (lambda () (add 'disconnect)))
       (reverse path))))
; expect-output: (connect talk1 disconnect)
; Normal return gives the thunk's value.
(p (list (dynamic-wind (lambda () (note 'before)) (lambda () (note 'during) 42) (lambda () (note 'after)))
         (trail!)))
; expect-output: (42 (before during after))
; An error runs the after-thunk before the catch.
(p (list (try (dynamic-wind (lambda () (note 'in)) (lambda () (error "boom")) (lambda () (note 'out)))
              (catch e (note 'caught) (error-message e)))
         (trail!)))
; expect-output: ("boom" (in out caught))
; An escape through nested winds runs every after-thunk, innermost first.
(p (list (call/cc
          (lambda (k)
            (dynamic-wind
             (lambda () (note 'a-in))
             (lambda ()
               (dynamic-wind
                (lambda () (note 'b-in))
                (lambda () (k 'escaped) (note 'unreached))
                (lambda () (note 'b-out))))
             (lambda () (note 'a-out)))))
         (trail!)))
; expect-output: (escaped (a-in b-in b-out a-out))
; An after-thunk that escapes replaces the escape in flight.
(p (call/cc (lambda (outer)
              (list 'inner
                    (call/cc (lambda (inner)
                               (dynamic-wind (lambda () #f)
                                             (lambda () (inner 'first))
                                             (lambda () (outer 'from-after)))))))))
; expect-output: from-after
; An error in before: neither thunk nor after runs.
(p (list (try (dynamic-wind (lambda () (error "no")) (lambda () (note 'thunk)) (lambda () (note 'after)))
              (catch e (error-message e)))
         (trail!)))
; expect-output: ("no" nil)
; Arguments must be procedures.
(p (try (dynamic-wind 1 (lambda () 2) (lambda () 3)) (catch e (error-message e))))
; expect-output: "dynamic-wind expects a procedure, got 1 (an integer)"
