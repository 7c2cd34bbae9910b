;; Error handling: errors are values with a kind, a message and irritants; try/catch
;; catches any kind, finally always runs, task errors surface at await, and
;; await-all-settled collects successes and failures without cancelling anything.
;;
;;   omega run lisp-examples/errors.lisp

(define (safe-div a b)
  (try (/ a b)
       (catch e (str "cannot divide: " (error-kind e)))
       (finally (println "  (safe-div done)"))))

(println (safe-div 10 2))
(println (safe-div 1 0))

(define (validate x)
  (if (< x 0) (error :invalid-input "negative input" x) x))

(println (try (validate -5)
              (catch e (list (error-kind e) (error-message e)))))

;; errors inside tasks surface where the task is awaited
(define results
  (await-all-settled
    (list (async (lambda () (validate 3)))
          (async (lambda () (validate -1)))
          (async (lambda () (llm.infer "Say fine." :max-tokens 8))))))
(for-each (lambda (r)
            (if (eq? (get r :status) :ok)
                (println "ok:    " (get r :value))
                (println "error: " (error-message (get r :error)))))
          results)
