;; The Omega Lisp prelude: list functions that call procedures, written in Lisp so that the
;; procedures they call can tail-call, raise through try/finally and (later) suspend.
;; Conventions: (foldl f init lst) calls (f acc x) left to right; (foldr f init lst) calls
;; (f x acc) right to left; (reduce f init lst) is foldl, and (reduce f lst) starts from the
;; first element. Inner loops are named after their function so stack traces read well.

(define (%check-proc who f)
  (if (procedure? f) #t (%type-error who "a procedure" f)))

(define (%any-null? ls)
  (cond ((null? ls) #f) ((null? (car ls)) #t) (else (%any-null? (cdr ls)))))

(define (%cars ls) (if (null? ls) '() (cons (car (car ls)) (%cars (cdr ls)))))
(define (%cdrs ls) (if (null? ls) '() (cons (cdr (car ls)) (%cdrs (cdr ls)))))

(define (%check-lists who ls)
  (cond ((null? ls) #t)
        ((list? (car ls)) (%check-lists who (cdr ls)))
        (else (%type-error who "a list" (car ls)))))

(define (map f lst . more)
  (%check-proc "map" f)
  (if (null? more)
      (let map ((l lst) (acc '()))
        (cond ((null? l) (reverse acc))
              ((pair? l) (map (cdr l) (cons (f (car l)) acc)))
              (else (%type-error "map" "a list" lst))))
      (begin
        (%check-lists "map" (cons lst more))
        (let map ((ls (cons lst more)) (acc '()))
          (if (%any-null? ls)
              (reverse acc)
              (map (%cdrs ls) (cons (apply f (%cars ls)) acc)))))))

(define (for-each f lst . more)
  (%check-proc "for-each" f)
  (if (null? more)
      (let for-each ((l lst))
        (cond ((null? l) nil)
              ((pair? l) (f (car l)) (for-each (cdr l)))
              (else (%type-error "for-each" "a list" lst))))
      (begin
        (%check-lists "for-each" (cons lst more))
        (let for-each ((ls (cons lst more)))
          (if (%any-null? ls)
              nil
              (begin (apply f (%cars ls)) (for-each (%cdrs ls))))))))

(define (filter pred lst)
  (%check-proc "filter" pred)
  (let filter ((l lst) (acc '()))
    (cond ((null? l) (reverse acc))
          ((pair? l) (filter (cdr l) (if (pred (car l)) (cons (car l) acc) acc)))
          (else (%type-error "filter" "a list" lst)))))

(define (foldl f init lst)
  (%check-proc "foldl" f)
  (let foldl ((l lst) (acc init))
    (cond ((null? l) acc)
          ((pair? l) (foldl (cdr l) (f acc (car l))))
          (else (%type-error "foldl" "a list" lst)))))

(define (foldr f init lst)
  (%check-proc "foldr" f)
  (if (list? lst) #t (%type-error "foldr" "a list" lst))
  (let foldr ((l (reverse lst)) (acc init))
    (if (null? l) acc (foldr (cdr l) (f (car l) acc)))))

(define (reduce f init . more)
  (%check-proc "reduce" f)
  (cond ((null? more)
         (cond ((null? init) nil)
               ((pair? init) (foldl f (car init) (cdr init)))
               (else (%type-error "reduce" "a list" init))))
        ((null? (cdr more))
         (if (list? (car more)) (foldl f init (car more)) (%type-error "reduce" "a list" (car more))))
        (else (error :arity-error "reduce expects (reduce f lst) or (reduce f init lst)"))))

(define (%merge a b less?)
  (let sort ((a a) (b b) (acc '()))
    (cond ((null? a) (append (reverse acc) b))
          ((null? b) (append (reverse acc) a))
          ((less? (car b) (car a)) (sort a (cdr b) (cons (car b) acc)))
          (else (sort (cdr a) b (cons (car a) acc))))))

(define (%merge-sort lst less?)
  (let ((n (length lst)))
    (if (< n 2)
        lst
        (let sort ((i (quotient n 2)) (left '()) (right lst))
          (if (= i 0)
              (%merge (%merge-sort (reverse left) less?) (%merge-sort right less?) less?)
              (sort (- i 1) (cons (car right) left) (cdr right)))))))

(define (sort lst . opt)
  (cond ((null? opt) (%sort lst))
        ((or (eq? (car opt) <) (eq? (car opt) >)) (%sort lst (car opt)))
        (else
         (%check-proc "sort" (car opt))
         (if (list? lst) #t (%type-error "sort" "a list" lst))
         (%merge-sort lst (car opt)))))
