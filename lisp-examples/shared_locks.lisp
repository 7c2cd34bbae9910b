;; Locks shared across processes (SPEC §8): with --lock-store (or OMEGA_LOCK_STORE) the
;; script's with-lock goes through PostgreSQL, so two processes running it take turns on
;; "report": every write section runs alone, across both processes as across the tasks of
;; one. Without a store the lock is this process's own and the script runs the same.
;;
;;   omega run --lock-store postgres://postgres@127.0.0.1:5432/test lisp-examples/shared_locks.lisp &
;;   omega run --lock-store postgres://postgres@127.0.0.1:5432/test lisp-examples/shared_locks.lisp

(define (section i)
  (with-lock "report" :mode :write :timeout 30000
    (println "section" i "begins")
    (sleep 200)                     ; others wait here, in this process and in the other
    (println "section" i "ends")))

(await-all (map (lambda (i) (async (lambda () (section i)))) (range 3)))
(println "all sections done")
