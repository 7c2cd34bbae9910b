; every datum of SPEC 6.1
#| block comment #| nested |# still comment |#
(define data (list 42 -7 +3 1.5 1e3 -0.25 .5 "esc\n\t\r\\\"\u{41}" #t #f true false nil () :key 'sym 'llm.infer 'a->b? 'set-x! '*x* 'x/y '<=> '_u))
#;(this form is skipped)
(write data) (newline)
(println '{:a 1 :b [2 3]})
(println '(a . b) '(1 2 . 3) `(q ,(+ 1 1)) 'x)
; expect-output: (42 -7 3 1.5 1000.0 -0.25 0.5 "esc\n\t\r\\\"A" #t #f #t #f nil nil :key sym llm.infer a->b? set-x! *x* x/y <=> _u)
; expect-output: {:a 1 :b (2 3)}
; expect-output: (a . b) (1 2 . 3) (q 2) x
(length data)
; expect: 23
