(define x 1)
(println (let ((x 2) (y x)) (list x y)))
(println (let* ((x 2) (y x)) (list x y)))
(println (let () 5))
(println (letrec ((even? (lambda (n) (if (= n 0) #t (odd? (- n 1)))))
                  (odd? (lambda (n) (if (= n 0) #f (even? (- n 1))))))
           (even? 1001)))
(println (let loop ((i 0) (acc '())) (if (= i 3) (reverse acc) (loop (+ i 1) (cons i acc)))))
(println (letrec* ((a 1) (b (+ a 1))) b))
; expect-output: (2 1)
; expect-output: (2 2)
; expect-output: 5
; expect-output: #f
; expect-output: (0 1 2)
; expect-output: 2
; internal defines are mutually recursive
(define (f n)
  (define (ev? n) (if (= n 0) #t (od? (- n 1))))
  (define (od? n) (if (= n 0) #f (ev? (- n 1))))
  (ev? n))
(f 10)
; expect: #t
