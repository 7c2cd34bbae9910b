; A syntax error in the user's code inside a macro use keeps the user's position.
(define-syntax twice (syntax-rules () ((_ e) (begin e e))))
(twice
  (let ((x)) x))
; expect-error: :syntax let: each binding must be (name value)
; expect-error-line: error[:syntax]: tests/scripts/scheme/syntax_rules_user_code_error.lisp:4:9: let: each binding must be (name value)
