; guard without a (var clause…) spec is a :syntax error.
(guard 5 (raise 1))
; expect-error: :syntax guard expects (guard (var clause…) body…)
