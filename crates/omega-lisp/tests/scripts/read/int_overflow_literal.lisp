99999999999999999999
; expect-error: :syntax integer literal out of range
