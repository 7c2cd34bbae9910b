(define (writeln x) (write x) (newline))
(define j (json-parse "{\"a\": [1, 2.5, \"s\", null, true, false], \"b\": {\"c\": -3}}"))
(writeln j)
(println (get (get j "b") "c"))
(println (json-stringify {:name "x" "n" 1 :list (list 1 2.5 #t nil) :nested {:k "v"}}))
(println (json-stringify '()) (json-stringify "q\"uote") (json-stringify 12))
(println (equal? (json-parse (json-stringify j)) j))
; expect-output: {"a" (1 2.5 "s" nil #t #f) "b" {"c" -3}}
; expect-output: -3
; expect-output: {"list":[1,2.5,true,null],"n":1,"name":"x","nested":{"k":"v"}}
; expect-output: null "q\"uote" 12
; expect-output: #t
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(writeln (err (lambda () (json-stringify car))))
(println (car (err (lambda () (json-parse "{bad")))))
; expect-output: (:type-error "json-stringify expects JSON-compatible data, got #<procedure car> (a procedure)")
; expect-output: :error
