; an unknown character name is a read error with its position
(list 1
  #\bogus)
; expect-error: :syntax char_bad_literal.lisp:3:3: unknown character #\bogus
