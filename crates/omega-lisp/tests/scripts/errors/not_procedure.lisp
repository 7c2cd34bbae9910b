(5 1 2)
; expect-error: :type-error cannot call 5 (an integer): not a procedure
