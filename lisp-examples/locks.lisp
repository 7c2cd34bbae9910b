;; Resource locks: ten parallel tasks each ask the LLM something, then read a shared
;; counter and write it back. The read-modify-write runs under (with-lock "counter"
;; :mode :write), so no update is lost even though the tasks interleave at every await
;; (the sleep inside the lock is one). The slow part, the LLM call, stays outside the
;; lock, bounded by :max-tokens: hold a lock around the critical part only, or ten calls
;; to a real model queue behind it. Readers share a :read lock. Locks are released on
;; exit, on error and on cancel.
;;
;;   omega run lisp-examples/locks.lisp

(define counter 0)

(define (increment i)
  (llm.infer (str "In one word: what comes after " i "?") :max-tokens 8)
  (with-lock "counter" :mode :write :timeout 5000
    (let ((seen counter))
      (sleep 1)                                 ; an await point inside the critical section:
      (set! counter (+ seen 1)))))              ; other tasks run meanwhile

(await-all (map (lambda (i) (async (lambda () (increment i)))) (range 10)))
(println "counter =" counter "(10 expected)")

(define (reader i)
  (with-lock "counter" :mode :read (sleep 5) counter))
(println "readers saw:" (await-all (map (lambda (i) (async (lambda () (reader i)))) (range 3))))

(define s (lock-stats))
(println "write grants:" (get s :acquisitions-write) "contended:" (> (get s :contended) 0))
