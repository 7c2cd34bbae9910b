; output builtins write to the embedder's sink
(display "a")
(display 1.0)
(display '("s" :k))
(newline)
(print "x" 1 "y")
(newline)
(println)
(println "multi" 'args "joined")
(write '("s" :k 2.0))
(newline)
(write "tab\there")
(println (display ""))
; expect-output: a1.0(s :k)
; expect-output: x 1 y
; expect-output: 
; expect-output: multi args joined
; expect-output: ("s" :k 2.0)
; expect-output: "tab\there"nil
