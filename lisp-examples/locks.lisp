;; Resource locks: ten parallel tasks each read a shared counter, ask the LLM something,
;; and write the counter back. The read-modify-write runs under (with-lock "counter"
;; :mode :write), so no update is lost even though the tasks interleave at every await.
;; Readers share a :read lock. Locks are released on exit, on error and on cancel.
;;
;;   omega run lisp-examples/locks.lisp

(define counter 0)

(define (increment i)
  (with-lock "counter" :mode :write :timeout 5000
    (let ((seen counter))
      (llm.infer (str "task " i " thinking"))   ; await points inside the critical section:
      (sleep 1)                                 ; other tasks run meanwhile
      (set! counter (+ seen 1)))))

(await-all (map (lambda (i) (async (lambda () (increment i)))) (range 10)))
(println "counter =" counter "(10 expected)")

(define (reader i)
  (with-lock "counter" :mode :read (sleep 5) counter))
(println "readers saw:" (await-all (map (lambda (i) (async (lambda () (reader i)))) (range 3))))

(define s (lock-stats))
(println "write grants:" (get s :acquisitions-write) "contended:" (> (get s :contended) 0))
