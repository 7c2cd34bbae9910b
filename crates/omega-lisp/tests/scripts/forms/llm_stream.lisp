; llm.stream calls back with each piece of the reply as it arrives (the mock streams
; word by word) and returns the whole reply; the call counts like llm.infer.
(define pieces '())
(define whole (llm.stream "a b c" (lambda (p) (set! pieces (cons p pieces))) :max-tokens 16))
(println whole)
(println (get (stats) :llm-calls))
(reverse pieces)
; expect-output: echo: a b c
; expect-output: 1
; expect: ("echo: " "a " "b " "c")
