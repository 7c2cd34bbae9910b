;; Hygienic macros with define-syntax / syntax-rules (R7RS 4.3): patterns with literals and
;; ellipses, macros that introduce their own variables without capturing the caller's, local
;; macros with let-syntax, and a macro defined inside a procedure body.

;; A counted loop: `i` is the caller's name, `limit` is the macro's own (hygienic) variable.
(define-syntax for
  (syntax-rules (from to)
    ((_ i from start to end body ...)
     (let ((limit end))
       (do ((i start (+ i 1))) ((> i limit)) body ...)))))

(define limit 'the-caller-s-limit)
(for k from 1 to 3 (println "step" k "of 3, caller's limit is still" limit))

;; Retry a body a few times, catching errors; `attempt` and `result` cannot clash with names
;; in the body.
(define-syntax with-retries
  (syntax-rules ()
    ((_ n body ...)
     (let loop ((attempt 1))
       (let ((result (try (list :ok (begin body ...))
                          (catch e (list :error (error-message e))))))
         (if (or (eq? (car result) :ok) (>= attempt n))
             result
             (loop (+ attempt 1))))))))

(define attempt 0)
(println (with-retries 5
           (set! attempt (+ attempt 1))
           (if (< attempt 3) (error "flaky tool") (str "worked on try " attempt))))

;; A small assertion macro that reports the failing expression as written.
(define-syntax check
  (syntax-rules (=>)
    ((_ expr => expected)
     (let ((got expr))
       (if (equal? got expected)
           (println "ok:" 'expr)
           (println "FAILED:" 'expr "gave" got "expected" expected))))))

(check (+ 1 2) => 3)
(check (string-upcase "tool") => "TOOL")

;; Nested ellipses: a table of (name handler …) clauses turned into a dispatch procedure.
(define-syntax define-dispatch
  (syntax-rules ()
    ((_ name (key handler) ...)
     (define (name k . args)
       (cond ((eq? k 'key) (apply handler args)) ...
             (else (error "unknown command" k)))))))

(define-dispatch run-command
  (add +)
  (join (lambda parts (string-join parts " ")))
  (shout string-upcase))
(println (run-command 'add 1 2 3) (run-command 'join "a" "b") (run-command 'shout "hey"))

;; A local macro, and one defined inside a procedure body.
(println (let-syntax ((twice (syntax-rules () ((_ e) (begin e e)))))
           (let ((n 0)) (twice (set! n (+ n 10))) n)))

(define (summarize items)
  (define-syntax count-if
    (syntax-rules () ((_ pred) (length (filter pred items)))))
  (list :numbers (count-if number?) :strings (count-if string?)))
(println (summarize '(1 "a" 2 "b" 3)))
