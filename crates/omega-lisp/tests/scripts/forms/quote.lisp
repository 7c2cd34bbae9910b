; quote and the ' shorthand return data unevaluated
(println (quote (a b c)))
(println '(1 (2 3) . 4))
(write '"str") (newline)
(println ':kw 'sym '())
; expect-output: (a b c)
; expect-output: (1 (2 3) . 4)
; expect-output: "str"
; expect-output: :kw sym nil
'{:a (+ 1 2)}
; expect: {:a (+ 1 2)}
