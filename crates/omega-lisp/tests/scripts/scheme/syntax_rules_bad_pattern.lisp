; Two ellipses in one list of a pattern.
(define-syntax bad (syntax-rules () ((_ a ... b ...) 1)))
; expect-error: :syntax more than one ellipsis in one list of a pattern
; expect-error-line: error[:syntax]: tests/scripts/scheme/syntax_rules_bad_pattern.lisp:2:49: syntax-rules: more than one ellipsis in one list of a pattern
