; A child task starts with its parent's parameterization at the spawn; a later parameterize
; in the parent does not reach a running child, and the child's own does not reach the parent.
(define (p x) (write x) (newline))
(define who (make-parameter 'top))
(define child
  (parameterize ((who 'parent-binding))
    (async (lambda () (sleep 5) (list (who) (parameterize ((who 'child-own)) (who)))))))
(p (parameterize ((who 'changed-later)) (await child)))
; expect-output: (parent-binding child-own)
(p (who))
; expect-output: top
(p (await (async (lambda () (who)))))
; expect-output: top
(p (parameterize ((who 'timed)) (with-timeout 1000 (who))))
; expect-output: timed
