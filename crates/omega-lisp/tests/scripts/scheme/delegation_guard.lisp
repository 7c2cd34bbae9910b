; assoc with a predicate hands its call to the prelude's %assoc-by; a script that rebinds that
; name to a native (even assoc itself) gets an error, never a loop
(define %assoc-by assoc)
(assoc 1 '((1 . 2)) =)
; expect-error: :type-error assoc expects its helper to be a Lisp procedure, got #<procedure assoc>
