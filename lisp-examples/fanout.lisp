;; Parallel LLM fan-out with await-all: ask five questions at once and collect the
;; answers in order. With --mock-latency 100 the whole run takes about one latency,
;; because the calls overlap while only one Lisp evaluation runs at a time.
;;
;;   omega run lisp-examples/fanout.lisp --mock-latency 100 --stats

(define questions
  (list "What is a monad?" "Why is the sky blue?" "What is Rust's borrow checker?"
        "Who wrote SICP?" "What is a tail call?"))

(define tasks
  (map (lambda (q) (async (lambda () (llm.infer q :max-tokens 64)) :name q))
       questions))

(for-each (lambda (q a) (println q "=>" a))
          questions
          (await-all tasks))

(println "calls made:" (get (stats) :llm-calls))
