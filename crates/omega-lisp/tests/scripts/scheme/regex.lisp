; Regular expressions (SPEC 6.9): linear-time patterns as strings; a match is a list (whole
; match, then groups, #f for a group that did not take part) or, with named groups, a map.
(define (p x) (write x) (newline))
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(p (regex-match "(\\d+)-(\\d+)" "pages 12-34 and 5-6"))
; expect-output: ("12-34" "12" "34")
(p (regex-match "^\\d+$" "12a"))
; expect-output: #f
(p (regex-match "(a)|(b)" "b"))
; expect-output: ("b" #f "b")
(p (regex-match "(?<key>\\w+)=(?<val>\\w*)" "x: name=omega"))
; expect-output: {:key "name" :match "name=omega" :val "omega"}
(p (regex-match "é+" "caféé!"))
; expect-output: ("éé")
(p (regex-find-all "\\d+" "a1 b22 c333"))
; expect-output: ("1" "22" "333")
(p (regex-find-all "(\\w)=(\\d)" "a=1, b=2"))
; expect-output: (("a=1" "a" "1") ("b=2" "b" "2"))
(p (regex-find-all "z" "abc"))
; expect-output: nil
(p (regex-replace "(\\w+)@(\\w+)" "mail bob@host now" "$2 at ${1}"))
; expect-output: "mail host at bob now"
(p (regex-replace "\\s+" "  a   b  " " "))
; expect-output: " a b "
(p (regex-replace "x" "abc" "$$"))
; expect-output: "abc"
(p (regex-split ",\\s*" "a, b,c,,d"))
; expect-output: ("a" "b" "c" "" "d")
(p (regex-split "[.!?]\\s+" "One. Two! Three?"))
; expect-output: ("One" "Two" "Three?")
(p (err (lambda () (regex-match "(unclosed" "x"))))
; expect-output: (:error "regex-match: bad pattern: regex parse error:\n    (unclosed\n    ^\nerror: unclosed group")
; A long bad pattern is not echoed into the message (it is the error's irritant, printed short).
(p (err (lambda () (regex-match (string-append (make-string 5000 #\() "x") "x"))))
; expect-output: (:error "regex-match: bad pattern: regex parse error: unclosed group")
(p (try (regex-match (string-append (make-string 5000 #\() "x") "x")
        (catch e (string-length (car (error-object-irritants e))))))
; expect-output: 5001
(p (err (lambda () (regex-match "a{1000}{1000}" "a"))))
; expect-output: (:error "regex-match: pattern too large when compiled (limit 1048576 bytes)")
(p (err (lambda () (regex-split 1 "x"))))
; expect-output: (:type-error "regex-split expects a string, got 1 (an integer)")
(p (err (lambda () (regex-replace "a" "b"))))
; expect-output: (:arity-error "regex-replace expects 3 arguments, got 2 arguments")
