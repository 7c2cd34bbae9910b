;; append copies every list but the last, which the result shares; a bad argument is reported
;; left to right (R7RS 6.4).
(define xs (list 1 2))
(define ys (list 3 4))
(define r (append xs ys))
(write (list r (eq? (cddr r) ys) (eq? r xs)))
(newline)
; expect-output: ((1 2 3 4) #t #f)
;; The copy is fresh: changing it leaves the first list alone, and the shared tail is shared.
(set-car! r 'changed)
(set-car! ys 'shared)
(write (list xs r))
(newline)
; expect-output: ((1 2) (changed 2 shared 4))
(write (list (append) (append '()) (append '() '()) (append '(1) 5) (append '(1) '(2) '(3 . 4))
             (append '() '() '(x)) (append 'atom)))
(newline)
; expect-output: (nil nil nil (1 . 5) (1 2 3 . 4) (x) atom)
;; Three lists: the middle one is copied too, and the result is a new chain.
(define m (list 'b))
(define r3 (append '(a) m '(c)))
(set-car! (cdr r3) 'B)
(write (list r3 m))
(newline)
; expect-output: ((a B c) (b))
;; Errors name the first bad argument, left to right.
(write (try (append 1 '(1 . 2) '()) (catch e (list (error-kind e) (error-message e)))))
(newline)
; expect-output: (:type-error "append expects a list, got 1 (an integer)")
(write (try (append '(1) '(1 . 2) '()) (catch e (list (error-kind e) (error-message e)))))
(newline)
; expect-output: (:type-error "append expects a list, got (1 . 2) (a list)")
;; A long first list copies without deep recursion anywhere.
(write (length (append (range 200000) '(end))))
(newline)
; expect-output: 200001
;; A circular list but the last is an error naming it (a circular last list would make a
;; result longer than any limit: tests/vm.rs).
(define c (list 1 2))
(set-cdr! (cdr c) c)
(write (try (append '(0) c '()) (catch e (error-message e))))
(newline)
; expect-output: "append: expected a proper list, got a circular list: #0=(1 2 . #0#)"
