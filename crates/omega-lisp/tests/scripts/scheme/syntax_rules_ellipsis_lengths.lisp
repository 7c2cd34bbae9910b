; Variables under one ellipsis that matched different numbers of forms.
(define-syntax zip (syntax-rules () ((_ (a ...) (b ...)) '((a b) ...))))
(zip (1 2) (3 4))
(zip (1 2) (3))
; expect-error: :syntax zip: pattern variables under one ellipsis matched different numbers of forms (2 and 1)
