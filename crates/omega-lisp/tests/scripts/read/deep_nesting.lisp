; deep nesting reads, compiles and prints
(define v '((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))
(println (car (car (car v))))
; expect-output: (((((((((((((((((((((((((((1)))))))))))))))))))))))))))
"ok"
; expect: "ok"
