; An ellipsis in a template with no pattern variable of enough depth under it.
(define-syntax bad
  (syntax-rules ()
    ((_ x) (list x ...))))
; expect-error: :syntax no pattern variable under this ellipsis
; expect-error-line: error[:syntax]: tests/scripts/scheme/syntax_rules_bad_ellipsis.lisp:4:20: syntax-rules: no pattern variable under this ellipsis is followed by as many ellipses in the pattern
