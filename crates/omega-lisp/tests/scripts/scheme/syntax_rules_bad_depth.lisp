; A pattern variable used under fewer ellipses than in its pattern: an error at the definition.
(define-syntax bad
  (syntax-rules ()
    ((_ x ...) (list x))))
; expect-error: :syntax syntax-rules: pattern variable x is followed by 1 ellipsis(es) in the pattern but only 0 in the template
; expect-error-line: error[:syntax]: tests/scripts/scheme/syntax_rules_bad_depth.lisp:4:22: syntax-rules: pattern variable x is followed by 1 ellipsis(es) in the pattern but only 0 in the template
