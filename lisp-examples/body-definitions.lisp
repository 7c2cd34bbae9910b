;; Internal definitions: a body may start with definitions, also grouped in a (begin …) or
;; produced by a macro; cond's => passes the test's value to a procedure.
(defmacro define-counter (name start)
  `(begin (define ,name ,start)
          (define (bump!) (set! ,name (+ ,name 1)) ,name)))

(define (count-words words)
  (define-counter seen 0)
  (begin (define (long? w) (> (string-length w) 3)))
  (for-each (lambda (w) (if (long? w) (bump!))) words)
  seen)

(println "long words:" (count-words '("a" "lisp" "with" "macros")))
(println (cond ((assoc :b '((:a . 1) (:b . 2))) => cdr) (else 0)))
