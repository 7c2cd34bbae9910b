;; Cancellation a catch-all cannot swallow (SPEC §6.5). Once a task is cancelled — by
;; cancel, a timeout, its parent — every later checkpoint (await, sleep, llm.infer, a
;; lock wait, yield, the VM's slice check) raises :cancelled again. A bare (catch e …)
;; sees it (so it can log it) but raises it again when the handler ends; finally and
;; (shield …) run shielded, within the cleanup grace; (catch e :cancelled …) names the
;; kind and may end it.
;;
;;   omega run lisp-examples/cancellation.lisp

(println "1. a retry loop that catches everything still stops at the cancel:")
(define worker
  (async (lambda ()
           (try (let retry ()
                  (try (llm.infer "summarise the report" :max-tokens 16)
                       (sleep 100)        ; pretend the answer was bad: back off, retry
                       (catch e (println "   worker caught" (error-kind e))))
                  (retry))
                (finally (println "   worker: finally runs"))))
         :name "worker"))
(sleep 250)
(define t0 (now-ms))
(cancel worker "user pressed stop")
(println "   await says:" (try (await worker) (catch e (error-message e))))
(println "   stopped within" (if (< (- (now-ms) t0) 20) "20 ms" "too long"))

(println "2. with-timeout reports :timeout at its own boundary:")
(println "  " (try (with-timeout 200 (let loop () (try (sleep 100) (catch e 0)) (loop)))
                   (catch e (list (error-kind e) (error-message e)))))

(println "3. cleanup that awaits goes in a shield:")
(define saver
  (async (lambda ()
           (try (sleep 10000)
                (catch e (shield (sleep 20) (println "   saver: state saved after" (error-kind e))))))))
(sleep 10)
(cancel saver "shutting down")
(println "   saver ended" (try (await saver) (catch e (error-kind e))))

(println "4. a handler that names :cancelled may end it:")
(define polite
  (async (lambda () (try (sleep 10000) (catch e :cancelled :stopped-politely)))))
(sleep 10)
(cancel polite "enough")
(println "  " (await polite))
