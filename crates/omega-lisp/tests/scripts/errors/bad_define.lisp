(if #t (let () (+ 1 (define x 2))))
; expect-error: :syntax bad_define.lisp:1:21: define is only allowed at top level or at the start of a body
