;; Hedged requests with await-any: send the same question to three "replicas" and take
;; the first answer that succeeds; the slower requests are cancelled ("another task won").
;; The first replica fails fast, so the winner is the fastest one that works.
;;
;;   omega run lisp-examples/hedged.lisp

(define (replica name delay-ms fail?)
  (async (lambda ()
           (sleep delay-ms)
           (if fail?
               (error :llm (str name " is overloaded"))
               (str name ": " (llm.infer "What is the capital of France?" :max-tokens 16))))
         :name name))

(define a (replica "replica-a" 5 #t))
(define b (replica "replica-b" 30 #f))
(define c (replica "replica-c" 80 #f))

(println "winner:" (await-any (list a b c)))
(println "replica-c was" (try (await c) (catch e (error-message e))))
