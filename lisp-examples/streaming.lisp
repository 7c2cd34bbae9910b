;; Streaming: llm.stream calls a procedure with each piece of the reply as the model
;; produces it, and returns the whole reply. Here the pieces are shown as they come,
;; then a second stream is cut off by with-timeout: its connection is closed at once, so
;; a llama.cpp server stops generating instead of finishing an answer nobody reads.
;;
;;   omega run lisp-examples/streaming.lisp
;;   scripts/real-model.sh run lisp-examples/streaming.lisp     (against a real model)

(define pieces 0)
(define reply
  (llm.stream "Write one sentence about the sea."
              (lambda (piece) (set! pieces (+ pieces 1)) (display piece))
              :max-tokens 48))
(newline)
(println "--" pieces "pieces," (string-length reply) "characters")

(println (try (with-timeout 200
                (llm.stream "Write a long story about a lighthouse keeper."
                            (lambda (piece) (sleep 50))
                            :max-tokens 400))
              (catch e (str "cut off: " (error-kind e)))))
