(define (writeln x) (write x) (newline))
(define (write-string x) (format "~s" x))
(define m {:a 1 :b 2})
(println m (hash-map) (write-string (hash-map "k" 1 :z 2)) (get m :a) (get m :zz) (get m :zz 'default) (get nil :a))
(println (assoc m :c 3) (assoc m :a 10 :d 4) (dissoc m :a) (dissoc m :nope) m)
(println (keys m) (vals m) (contains? m :a) (contains? m :x) (count m) (count '(1 2)) (count "abc") (count nil))
(println (write-string {1 "one" "two" 2 (list 1) 'l}) (equal? {:a 1} {:a 1}) (get {'(1 2) 'x} (list 1 2)))
; expect-output: {:a 1 :b 2} {} {"k" 1 :z 2} 1 nil default nil
; expect-output: {:a 1 :b 2 :c 3} {:a 10 :b 2 :d 4} {:b 2} {:a 1 :b 2} {:a 1 :b 2}
; expect-output: (:a :b) (1 2) #t #f 2 2 3 0
; expect-output: {1 "one" "two" 2 (1) l} #t x
(define (err thunk) (try (thunk) (catch e (list (error-kind e) (error-message e)))))
(writeln (err (lambda () (get 5 :a))))
(writeln (err (lambda () (hash-map 1))))
(writeln (err (lambda () (keys '(1)))))
(writeln (err (lambda () (count 5))))
; expect-output: (:type-error "get expects a map, got 5 (an integer)")
; expect-output: (:arity-error "hash-map expects an even number of arguments, got 1")
; expect-output: (:type-error "keys expects a map, got (1) (a list)")
; expect-output: (:type-error "count expects a map, list or string, got 5 (an integer)")
(get (assoc {} "x" {:nested (list 1 2)}) "x")
; expect: {:nested (1 2)}
