; No rule matches: a :syntax error naming the macro and the use site.
(define-syntax pair-of (syntax-rules () ((_ a b) (cons a b))))
(pair-of 1 2)
(pair-of 1 2 3)
; expect-error: :syntax no syntax-rules clause of pair-of matches (pair-of 1 2 3)
; expect-error-line: error[:syntax]: tests/scripts/scheme/syntax_rules_no_match.lisp:4:1: no syntax-rules clause of pair-of matches (pair-of 1 2 3)
