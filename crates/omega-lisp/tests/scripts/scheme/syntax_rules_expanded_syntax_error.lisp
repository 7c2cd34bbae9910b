; A syntax error in what a template made points at the macro use.
(define-syntax broken-if (syntax-rules () ((_ c) (if c))))
(define (f x)
  (broken-if x))
; expect-error: :syntax if expects (if test then [else])
; expect-error-line: error[:syntax]: tests/scripts/scheme/syntax_rules_expanded_syntax_error.lisp:4:3: if expects (if test then [else])
