;; Timeouts and cancellation with finally: a slow call is cut off by with-timeout, a
;; task is cancelled while it waits on the LLM, and every finally block still runs —
;; cleanup can even await, because finally runs shielded from the cancellation.
;; (slow-llm stands in for a slow model: it waits, then calls llm.infer.)
;;
;;   omega run lisp-examples/timeouts.lisp

(define (slow-llm prompt ms) (sleep ms) (llm.infer prompt :max-tokens 32))

(println "1. with-timeout:")
(println "  " (try (with-timeout 50 (slow-llm "a long essay, please" 500))
                   (catch e (str "gave up: " (error-kind e)))))

(println "2. cancel a task mid-call:")
(define worker
  (async (lambda ()
           (try (slow-llm "something slow" 500)
                (finally
                  (println "   worker: cleaning up")
                  (sleep 10)
                  (println "   worker: cleanup finished"))))
         :name "worker"))
(sleep 20)
(println "   cancel returned" (cancel worker "user pressed stop"))
(println "   await says:" (try (await worker) (catch e (error-message e))))
(println "   state:" (task-state worker))

(println "3. a task timeout:")
(define slow (async (lambda () (sleep 10000) :never) :timeout 30))
(println "  " (try (await slow) (catch e (list (error-kind e) (error-message e)))))
