;; Scheme control: an early exit with call/cc, cleanup with dynamic-wind, errors handled with
;; guard and with-exception-handler, a lazy stream of primes with delay-force, and a parameter
;; that a child task inherits. Run: omega run lisp-examples/control.lisp

;; call/cc as "return": the first word longer than n letters, or #f.
(define (first-long-word words n)
  (call/cc
   (lambda (return)
     (for-each (lambda (w) (if (> (string-length w) n) (return w))) words)
     #f)))
(println "first long word:" (first-long-word '("an" "agent" "calls" "tools") 4))

;; dynamic-wind: the "close" runs however the body is left, here by an escape.
(define (with-resource name body)
  (dynamic-wind
   (lambda () (println "open" name))
   (lambda () (body name))
   (lambda () (println "close" name))))
(println "escaped with:"
         (call/cc (lambda (k) (with-resource "db" (lambda (r) (k (string-append r "-result")))))))

;; guard: a parse step that fails for bad input; the clause picks the errors it handles.
(define (parse-score s)
  (let ((n (string->number s)))
    (cond ((not n) (raise (list 'not-a-number s)))
          ((or (< n 0) (> n 10)) (error "score out of range" n))
          (else n))))
(define (safe-score s)
  (guard (e ((and (pair? e) (eq? (car e) 'not-a-number)) (list :bad-input (cadr e)))
            ((error-object? e) (list :invalid (error-object-message e) (error-object-irritants e))))
    (parse-score s)))
(for-each (lambda (s) (println s "=>" (safe-score s))) '("7" "eleven" "42"))

;; with-exception-handler + raise-continuable: the handler supplies a default and the
;; computation goes on where it was.
(define (lookup key table)
  (let ((hit (assoc key table)))
    (if hit (cdr hit) (raise-continuable (list 'missing key)))))
(println "total:"
         (with-exception-handler
          (lambda (c) 0)
          (lambda () (+ (lookup 'a '((a . 5))) (lookup 'b '((a . 5)))))))

;; A lazy stream of primes: only what is forced is computed; delay-force keeps forcing
;; iterative, however long the chain of skipped numbers.
(define (integers-from n) (delay (cons n (integers-from (+ n 1)))))
(define (stream-filter keep? s)
  (delay-force
   (let ((cell (force s)))
     (if (keep? (car cell))
         (delay (cons (car cell) (stream-filter keep? (cdr cell))))
         (stream-filter keep? (cdr cell))))))
(define (stream-take s n)
  (if (= n 0) '() (let ((cell (force s))) (cons (car cell) (stream-take (cdr cell) (- n 1))))))
(define (prime? n)
  (and (> n 1) (let loop ((d 2)) (cond ((> (* d d) n) #t) ((= 0 (remainder n d)) #f) (else (loop (+ d 1)))))))
(println "primes:" (stream-take (stream-filter prime? (integers-from 1)) 10))

;; Parameters: a log prefix bound for a region; a child task starts with its parent's binding.
(define log-prefix (make-parameter "[main]"))
(define (log . parts) (apply println (log-prefix) parts))
(parameterize ((log-prefix "[worker]"))
  (await (async (lambda () (log "running in a child task")))))
(log "back in the script")
