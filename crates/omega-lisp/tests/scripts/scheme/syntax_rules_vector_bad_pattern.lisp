; Two ellipses in one vector of a pattern, as in one list, are a syntax error at the definition.
(define-syntax bad
  (syntax-rules ()
    ((_ #(a ... b ...)) 'never)))
; expect-error: :syntax more than one ellipsis in one list of a pattern
