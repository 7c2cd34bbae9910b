; a non-last item of `and` that is a numeric comparison, or `not` of one, is its
; compare-and-branch op: false jumps to the form's `#f`, true goes on with the next item; with the
; primitive redefined (or a non-number) the item's own value decides, and is the form's value
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(define (ok? row dist placed)
  (if (null? placed)
      #t
      (and (not (= (car placed) (+ row dist)))
           (not (= (car placed) (- row dist)))
           (ok? row (+ dist 1) (cdr placed)))))
(define (between a x b) (and (< a x) (<= x b) 'yes))
(define (close? x y) (and (< (- x y) 0.5) (> (- x y) -0.5) (list x y)))
(define (lit x) (and (> x 2.5) (not (= x 3)) x))
(println (ok? 1 1 '(5 7 9)) (ok? 1 1 '(5 2 9)) (ok? 4 1 '(5 7 9)))
(println (between 1 2 3) (between 1 1 3) (between 1 3 3) (between 1 4 3) (between 1.5 2 2.5))
(println (close? 1.2 1) (close? 3 1) (lit 3) (lit 4) (lit 2) (lit 3.5))
(println (let ((x 5)) (list (and (< x 10) (> x 1)) (and (< x 1) 'no) (and (not (< x 1)) 'yes))))
; errors: the comparison's own message, at its own item
(println (err (lambda () (between 1 "2" 3))) (err (lambda () (ok? 1 1 '(a)))))
(println (err (lambda () (lit 'q))))
; `=` redefined: its value (not a boolean) is what the form sees and returns
(set! = (lambda (a b) (if (eqv? a b) '() 'differ)))
(println (ok? 1 1 '(5 7 9)) (lit 3) (lit 4))
; `not` redefined too
(set! not (lambda (x) (if x '() 'was-false)))
(println (ok? 1 1 '(5 7 9)) (lit 3) (lit 4))
; `<` redefined
(set! < (lambda (a b) (list a b)))
(println (between 1 2 3) (between 5 1 0))
; expect-output: #t #t #f
; expect-output: yes #f yes #f yes
; expect-output: (1.2 1) #f #f 4 #f 3.5
; expect-output: (#t #f yes)
; expect-output: (:type-error < expects numbers, got "2" (a string)) (:type-error = expects numbers, got a (a symbol))
; expect-output: (:type-error > expects numbers, got q (a symbol))
; expect-output: #f 3 #f
; expect-output: nil 3 nil
; expect-output: yes #f
