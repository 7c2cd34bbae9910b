(define (writeln x) (write x) (newline))
(println (str) (str "a" 1 'b :c 2.5 '(1 "x")) (string-append "ab" "cd" "") (string-append))
(println (substring "hello" 1 3) (substring "hello" 2) (string-length "héllo") (string-length ""))
(println (string-upcase "abc") (string-downcase "ABC") (string-trim "  x y  "))
(println (string-split "a b  c") (string-split "a,b,,c" ",") (string-split "abc" ""))
(println (string-join '("a" "b" "c") "-") (string-join '("a" "b")) (string-join '(1 2) ", "))
(println (string-contains? "hello" "ell") (string-contains? "hello" "xyz") (string-replace "a-b-c" "-" "+"))
(println (number->string 42) (number->string 2.5) (string->number "42") (string->number "1e3") (string->number "abc"))
(println (symbol->string 'abc) (string->symbol "xyz") (keyword->string :kw))
(println (format "~a + ~a = ~s~%" 1 2 "three") (format "~~"))
(write "quote\" backslash\\ newline\n tab\t unicode\u{1F600}")
(newline)
(display "display\tplain")
(newline)
; expect-output:  a1b:c2.5(1 x) abcd 
; expect-output: el llo 5 0
; expect-output: ABC abc x y
; expect-output: (a b c) (a b  c) (a b c)
; expect-output: a-b-c ab 1, 2
; expect-output: #t #f a+b+c
; expect-output: 42 2.5 42 1000.0 #f
; expect-output: abc xyz kw
; expect-output: 1 + 2 = "three"
; expect-output:  ~
; expect-output: "quote\" backslash\\ newline\n tab\t unicode😀"
; expect-output: display	plain
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(writeln (err (lambda () (string-append "a" 1))))
(writeln (err (lambda () (substring "abc" 2 9))))
(writeln (err (lambda () (string-length 'a))))
(writeln (err (lambda () (format "~a"))))
(writeln (err (lambda () (format "~q" 1))))
(writeln (err (lambda () (symbol->string "s"))))
(writeln (err (lambda () (string-upcase))))
; expect-output: (:type-error "string-append expects a string, got 1 (an integer)")
; expect-output: (:error "substring: range 2..9 out of bounds for a string of length 3")
; expect-output: (:type-error "string-length expects a string, got a (a symbol)")
; expect-output: (:error "format: not enough arguments for \"~a\"")
; expect-output: (:error "format: unknown directive ~q")
; expect-output: (:type-error "symbol->string expects a symbol, got \"s\" (a string)")
; expect-output: (:arity-error "string-upcase expects 1 argument, got 0 arguments")
"done"
; expect: "done"
