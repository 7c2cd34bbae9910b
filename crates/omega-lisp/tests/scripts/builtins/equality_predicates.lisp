(println (eq? 'a 'a) (eq? 1 1) (eq? "a" "a") (eq? '() nil) (eq? :k :k))
(define s "x")
(println (eq? s s) (eqv? 1.5 1.5) (eqv? "a" "a") (equal? '(1 (2 {:a 3})) '(1 (2 {:a 3}))) (equal? 1 1.0) (equal? "a" "b"))
(println (not #f) (not nil) (not 0) (boolean? #f) (boolean? nil) (string? "s") (string? 's))
(println (symbol? 'a) (symbol? :a) (keyword? :a) (keyword? "a") (list? '(1 2)) (list? '()) (list? '(1 . 2)))
(println (pair? '(1)) (pair? '()) (null? '()) (null? nil) (null? 0) (procedure? car) (procedure? (lambda () 1)) (procedure? 'car))
(println (map? {:a 1}) (map? '()) (task? 1) (error? 1) (error? (try (error "x") (catch e e))))
(println true false #t #f)
; expect-output: #t #t #f #t #t
; expect-output: #t #t #t #t #f #f
; expect-output: #t #t #f #t #f #t #f
; expect-output: #t #f #t #f #t #t #f
; expect-output: #t #f #t #t #f #t #t #f
; expect-output: #t #f #f #f #t
; expect-output: #t #f #t #f
(try (eq? 1) (catch e (error-message e)))
; expect: "eq? expects 2 arguments, got 1 argument"
