;; The async surface's macros (SPEC §6.4). `%async`/`%await` keep the natives even if a
;; script rebinds `async` or `await`.

(define %async async)
(define %await await)

;; (with-timeout ms body…): runs body as a child task with a timeout; raises :timeout.
(defmacro with-timeout (ms . body)
  `(%await (%async (lambda () ,@body) :timeout ,ms)))
