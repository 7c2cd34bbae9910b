; A vector pattern does not match a list (nor a vector of another length).
(define-syntax pair-vec
  (syntax-rules ()
    ((_ #(a b)) (+ a b))))
(display (pair-vec #(1 2)))
(newline)
(pair-vec (1 2))
; expect-error: :syntax no syntax-rules clause of pair-vec matches (pair-vec (1 2))
; expect-error-line: error[:syntax]: tests/scripts/scheme/syntax_rules_vector_no_match.lisp:7:1: no syntax-rules clause of pair-vec matches (pair-vec (1 2))
