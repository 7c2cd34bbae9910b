;; Priorities under --fairness priority: with one slot for background work, queued tasks
;; are admitted highest priority first (FIFO among equals). Compare:
;;
;;   omega run lisp-examples/priorities.lisp --fairness priority --max-tasks 2
;;   omega run lisp-examples/priorities.lisp --fairness fifo --max-tasks 2
;;
;; The script's top level holds one of the two slots. "low-1" starts at once (a slot is
;; free when it is submitted); the others queue and are admitted one by one as slots free.
;; The top level sleeps while the queue drains: awaiting a still-queued task would admit
;; it at once on the awaiter's slot (slot lending, which prevents deadlocks), in the order
;; the tasks are awaited rather than by priority.

(define order '())
(define (job name prio)
  (async (lambda () (sleep 1) (set! order (cons name order)) name) :name name :priority prio))

(define jobs
  (list (job "low-1" 1) (job "high-1" 10) (job "mid" 5) (job "low-2" 1) (job "high-2" 10)))
(sleep 50)
(await-all jobs)
(println "ran in order:" (reverse order))
