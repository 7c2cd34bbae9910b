;; The async surface's macros (SPEC §6.4). `%async`/`%await` (defined with the natives, in
;; `async_surface.rs`) keep the natives even if a script rebinds `async` or `await`.

;; (with-timeout ms body…): runs body as a child task with a timeout; raises :timeout.
(defmacro with-timeout (ms . body)
  `(%await (%async (lambda () ,@body) :timeout ,ms)))

;; (with-lock name [:mode :read|:write] [:timeout ms] body…) and
;; (with-locks (list name…) [:mode …] [:timeout ms] body…): hold the lock(s) — all or none —
;; while body runs; released on normal exit, on error and on cancellation (the finally
;; block runs shielded). The owner is the current task. Default mode :write.
(define (%lock-options args)
  (let loop ((args args) (mode :write) (timeout nil))
    (cond ((and (pair? args) (eq? (car args) :mode) (pair? (cdr args)))
           (loop (cddr args) (cadr args) timeout))
          ((and (pair? args) (eq? (car args) :timeout) (pair? (cdr args)))
           (loop (cddr args) mode (cadr args)))
          (else (list mode timeout args)))))

(defmacro with-lock (name . rest)
  (let ((o (%lock-options rest))
        (g (gensym "lock")))
    `(let ((,g (%lock-acquire "with-lock" ,name ,(car o) ,(cadr o))))
       (try (begin ,@(car (cddr o)))
            (finally (%lock-release ,g))))))

(defmacro with-locks (names . rest)
  (let ((o (%lock-options rest))
        (g (gensym "locks")))
    `(let ((,g (%lock-acquire "with-locks" ,names ,(car o) ,(cadr o))))
       (try (begin ,@(car (cddr o)))
            (finally (%lock-release ,g))))))
;; (llm.stream prompt on-chunk [:model m] [:system s] [:temperature t] [:max-tokens n]):
;; asks the model as llm.infer does, calls (on-chunk text) with each piece of the reply as
;; it arrives, and returns the whole reply. If on-chunk raises, or the task is cancelled
;; or times out, the connection is closed at once (a llama.cpp server stops generating).
;; The stream holds its llm slot until it ends: a model call made from on-chunk needs
;; another one (with every slot held by the task's own streams, it fails at once).
(define (llm.stream prompt on-chunk . options)
  (if (not (procedure? on-chunk))
      (error :type-error "llm.stream expects a procedure to call with each piece" on-chunk))
  (let ((s (apply %llm-stream-open prompt options)))
    (try (let loop ((piece (%llm-stream-next s)))
           (if piece
               (begin (on-chunk piece) (loop (%llm-stream-next s)))
               (%llm-stream-text s)))
         (finally (%llm-stream-close s)))))
