; define-record-type (issue 15, R7RS 5.5).
(define (p x) (write x) (newline))
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define-record-type <pare>
  (kons x y)
  pare?
  (x kar set-kar!)
  (y kdr))
(p (pare? (kons 1 2)))
; expect-output: #t
(p (pare? (cons 1 2)))
; expect-output: #f
(p (kar (kons 1 2)))
; expect-output: 1
(p (kdr (kons 1 2)))
; expect-output: 2
(p (let ((k (kons 1 2))) (set-kar! k 3) (kar k)))
; expect-output: 3
(p (kons 1 2))
; expect-output: #<record pare>
(display (list (kons 1 2))) (newline)
; expect-output: (#<record pare>)
; A constructor may name a subset of the fields; the others start as nil.
(define-record-type node (make-node val) node? (val node-val) (next node-next set-node-next!))
(define n (make-node 1))
(p (list (node-val n) (node-next n)))
; expect-output: (1 nil)
; A record can close a cycle; printing stays finite.
(set-node-next! n n)
(p (eq? (node-next n) n))
; expect-output: #t
(p (list (equal? n n) (equal? (kons 1 2) (kons 1 2)) (eqv? n n)))
; expect-output: (#t #f #t)
; Two types of the same shape are different types.
(define-record-type other (make-other x) other? (x other-x))
(p (list (other? (kons 1 2)) (pare? (make-other 1))))
; expect-output: (#f #f)
(p (err (lambda () (kar 5))))
; expect-output: (:type-error "kar expects a record of type pare (field x), got 5 (an integer)")
(p (err (lambda () (set-kar! (make-other 1) 0))))
; expect-output: (:type-error "set-kar! expects a record of type pare (field x), got #<record other> (a record other)")
(p (err (lambda () (kons 1))))
; expect-output: (:arity-error "kons expects 2 arguments, got 1 argument")
(p (err (lambda () (json-stringify (kons 1 2)))))
; expect-output: (:type-error "json-stringify expects JSON-compatible data, got #<record pare> (a record pare)")
(define-record-type bad (make-bad z) bad? (x bad-x))
; expect-error: :syntax define-record-type: make-bad names z, which is not a field
