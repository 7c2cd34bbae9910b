(raise '(1 2))
; expect-error: :error (1 2)
