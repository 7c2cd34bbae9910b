; with-lock / with-locks: exclusive sections, released on error, timeouts as :lock-timeout.
(define log '())
(define (note x) (set! log (cons x log)))
(define (worker name)
  (with-lock "counter" :mode :write
    (note (str name "-in"))
    (sleep 5)
    (note (str name "-out"))))
(await-all (list (async (lambda () (worker "a"))) (async (lambda () (worker "b")))))
(println (reverse log))
; an error inside the body releases the lock
(println (try (with-lock "r" (error :oops "inside")) (catch e (error-kind e))))
(println (with-lock "r" :mode :read :ok))
; a holder that never lets go makes a waiter time out
(define holder (async (lambda () (with-lock "busy" (sleep 1000)))))
(sleep 5)
(println (try (with-lock "busy" :timeout 20 :never) (catch e (error-kind e))))
(cancel holder "done")
; the cancelled holder's finally released "busy"
(println (with-lock "busy" :timeout 50 :free))
; a parent holding "x" awaits a child that wants "x": a deadlock, reported at once
(println (try (with-lock "x" (await (async (lambda () (with-lock "x" :inner)))))
              (catch e (error-kind e))))
(println (with-locks (list "x" "y") :mode :read (+ 1 1)))
(println (get (lock-stats) :timeouts))
(println (try (with-lock "z" :mode :exclusive 1) (catch e (error-message e))))
; expect-output: (a-in a-out b-in b-out)
; expect-output: :oops
; expect-output: :ok
; expect-output: :lock-timeout
; expect-output: :free
; expect-output: :deadlock
; expect-output: 2
; expect-output: 1
; expect-output: with-lock :mode expects :read or :write, got :exclusive (a keyword)
