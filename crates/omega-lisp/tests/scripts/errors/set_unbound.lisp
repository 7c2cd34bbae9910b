(set! nope 1)
; expect-error: :unbound set!: unbound variable: nope
