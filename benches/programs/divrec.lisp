;; divrec — halves a list recursively with cddr (r7rs-benchmarks "divrec", transliterated).
(define (create-n n)
  (do ((n n (- n 1))
       (a '() (cons '() a)))
      ((= n 0) a)))
(define (recursive-div2 l)
  (if (null? l) '() (cons (car l) (recursive-div2 (cddr l)))))
(define ll (create-n 1000))
(define (repeat k)
  (let loop ((k k) (r #f))
    (if (= k 0) r (loop (- k 1) (recursive-div2 ll)))))
(println (length (repeat 200)))
; expect-output: 500
