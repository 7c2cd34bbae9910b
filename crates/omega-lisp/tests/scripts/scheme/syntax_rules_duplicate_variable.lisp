; A pattern variable twice in one pattern.
(define-syntax bad (syntax-rules () ((_ a (b a)) 1)))
; expect-error: :syntax syntax-rules: pattern variable a appears twice in a pattern
