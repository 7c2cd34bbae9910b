; a radix-prefixed integer with a digit outside its radix
(+ 1 #b102)
; expect-error: :syntax bad_radix_literal.lisp:2:6: bad integer literal: #b102
