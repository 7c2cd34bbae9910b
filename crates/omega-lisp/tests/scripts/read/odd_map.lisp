{:a 1 :b}
; expect-error: :syntax odd_map.lisp:1:1: map literal needs an even number of forms
