; a character literal cut off by the end of input (no newline after it)
; expect-error: :syntax char_eof.lisp:3:1: #\ needs a character (end of input)
#\