;; deriv — symbolic derivative of a polynomial (r7rs-benchmarks "deriv", transliterated).
(define (deriv a)
  (cond ((not (pair? a)) (if (eq? a 'x) 1 0))
        ((eq? (car a) '+) (cons '+ (map deriv (cdr a))))
        ((eq? (car a) '-) (cons '- (map deriv (cdr a))))
        ((eq? (car a) '*)
         (list '* a (cons '+ (map (lambda (a) (list '/ (deriv a) a)) (cdr a)))))
        ((eq? (car a) '/)
         (list '-
               (list '/ (deriv (cadr a)) (caddr a))
               (list '/ (cadr a) (list '* (caddr a) (caddr a) (deriv (caddr a))))))
        (else (error "no derivation method for" a))))
(define input '(+ (* 3 x x) (* a x x) (* b x) 5))
(define expected
  '(+ (* (* 3 x x) (+ (/ 0 3) (/ 1 x) (/ 1 x)))
      (* (* a x x) (+ (/ 0 a) (/ 1 x) (/ 1 x)))
      (* (* b x) (+ (/ 0 b) (/ 1 x)))
      0))
(define (repeat k)
  (let loop ((k k) (r #f))
    (if (= k 0) r (loop (- k 1) (deriv input)))))
(println (equal? (repeat 2000) expected))
; expect-output: #t
