;; Map-reduce summarisation: summarise each document in parallel (map), then summarise
;; the summaries (reduce). The number of LLM calls in flight is capped by the scheduler's
;; llm pool: run it with --max-llm 3 and --stats to see peak_in_use stay at 3.
;;
;;   omega run lisp-examples/map_reduce.lisp --max-llm 3 --mock-latency 20 --stats

(define documents
  (list "Rust guarantees memory safety without a garbage collector."
        "Tokio is an asynchronous runtime for Rust."
        "Trio popularised structured concurrency in Python."
        "Erlang processes share nothing and communicate by messages."
        "A Lisp program is a list of lists."
        "LLM calls are slow, so they should overlap."))

(define (summarise text)
  (llm.infer (str "Summarise in five words: " text) :max-tokens 8))

;; map: one task per document
(define partial
  (await-all (map (lambda (d) (async (lambda () (summarise d)))) documents)))

;; reduce: one call over all the partial summaries
(define final
  (summarise (string-join partial " | ")))

(println (length partial) "partial summaries")
(println "final:" final)
