; Only syntax-rules transformers are supported.
(define-syntax m (lambda (form) form))
; expect-error: :syntax m: the transformer must be a (syntax-rules …) form
