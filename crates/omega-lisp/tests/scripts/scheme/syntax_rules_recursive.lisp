; A macro that expands into itself forever ends in a :limit error at the use site.
(define-syntax forever (syntax-rules () ((_ x) (forever (x)))))
(define (f) (forever 1))
; expect-error: :limit limit exceeded: macro expansion depth (1100), expanding forever
; expect-error-line: error[:limit]: tests/scripts/scheme/syntax_rules_recursive.lisp:3:13: limit exceeded: macro expansion depth (1100), expanding forever
