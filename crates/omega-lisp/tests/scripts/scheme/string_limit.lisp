; make-string checks max_string_len before it allocates anything (a :limit error is not catchable)
(define n 100000000000)
(make-string n #\λ)
; expect-error: :limit max_string_len
