;; Vectors (issue 15): literals, indexing, copying and filling, vector-map, and cyclic data
;; printed with datum labels.
;;
;;   omega run lisp-examples/vectors.lisp

;; A histogram of word lengths in a fixed-size vector.
(define words '("the" "quick" "brown" "fox" "jumps" "over" "the" "lazy" "dog"))
(define counts (make-vector 6 0))
(for-each (lambda (w)
            (let ((n (min 5 (string-length w))))
              (vector-set! counts n (+ 1 (vector-ref counts n)))))
          words)
(println "lengths 0..5:" counts)

;; #( … ) literals are constants; vector-map builds a new vector.
(define primes #(2 3 5 7 11 13))
(println "squares:" (vector-map (lambda (p) (* p p)) primes))
(println "middle:" (vector-copy primes 2 4) "as a list:" (vector->list primes 4))

;; An in-place insertion sort on a copy.
(define (vector-sort! v)
  (do ((i 1 (+ i 1))) ((>= i (vector-length v)) v)
    (let ((x (vector-ref v i)))
      (let loop ((j (- i 1)))
        (if (and (>= j 0) (> (vector-ref v j) x))
            (begin (vector-set! v (+ j 1) (vector-ref v j)) (loop (- j 1)))
            (vector-set! v (+ j 1) x))))))
(println "sorted:" (vector-sort! (vector-copy #(31 4 15 9 26 5 35))))

;; A ring buffer as a circular list: write prints the cycle with a datum label.
(define ring (list 'a 'b 'c))
(set-cdr! (cddr ring) ring)
(write ring) (newline)
(println "list? of a ring:" (list? ring) "– its 7th element:" (list-ref ring 7))
(println (try (length ring) (catch e (error-message e))))

;; JSON: a vector is an array.
(println (json-stringify {:primes primes :nested #(#(1 2) "x")}))
