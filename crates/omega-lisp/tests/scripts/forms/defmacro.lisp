(defmacro my-unless (c . body) `(if ,c nil (begin ,@body)))
(println (my-unless #f 1 2))
(defmacro swap! (a b)
  (let ((tmp (gensym)))
    `(let ((,tmp ,a)) (set! ,a ,b) (set! ,b ,tmp))))
(define x 1)
(define y 2)
(swap! x y)
(println x y)
(defmacro my-or2 (a b) (let ((t (gensym "t"))) `(let ((,t ,a)) (if ,t ,t ,b))))
(define t 5)
(println (my-or2 #f t))
(println (symbol? (gensym)) (eq? (gensym) (gensym)))
; expect-output: 2
; expect-output: 2 1
; expect-output: 5
; expect-output: #t #f
(defmacro while (c . body) `(let lp () (when ,c ,@body (lp))))
(define i 0)
(while (< i 10) (set! i (+ i 1)))
i
; expect: 10
