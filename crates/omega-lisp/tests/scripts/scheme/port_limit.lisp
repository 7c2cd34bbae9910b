; an output port never grows past max_string_len (16 MiB by default): :limit, uncatchable
(define big (make-string 10000000 #\a))
(define q (open-output-string))
(write-string big q)
(write-string big q)
; expect-error: :limit limit exceeded: max_string_len (16777216)
