; A local macro is not a value.
(let-syntax ((m (syntax-rules () ((_) 1))))
  (list m))
; expect-error: :syntax m is a macro and cannot be used as a value
