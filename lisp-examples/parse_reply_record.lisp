;; Parsing an LLM-style reply into a record (issue 15): regexes pull out the fields, a string
;; port reads the fenced data block, and define-record-type gives the result a type with
;; checked accessors.
;;
;;   omega run lisp-examples/parse_reply_record.lisp

(define reply
  "Verdict: approve
Confidence: 0.91
Reasons:
- tests pass
- no new dependencies

```data
(risk low) (files #(\"value.rs\" \"printer.rs\"))
```")

(define-record-type review
  (make-review verdict confidence reasons data)
  review?
  (verdict review-verdict)
  (confidence review-confidence set-review-confidence!)
  (reasons review-reasons)
  (data review-data))

;; Every datum of a string, read from a string port.
(define (read-all text)
  (let ((in (open-input-string text)))
    (let loop ((acc '()))
      (let ((d (read in)))
        (if (eof-object? d) (reverse acc) (loop (cons d acc)))))))

(define (field name text)
  (let ((m (regex-match (str "(?m)^" name ": (.+)$") text)))
    (if m (cadr m) (error (str "reply has no " name " line")))))

(define (parse text)
  (make-review
   (string->symbol (field "Verdict" text))
   (string->number (field "Confidence" text))
   (map cadr (regex-find-all "(?m)^- (.+)$" text))
   (read-all (get (regex-match "(?s)```data\\n(?<d>.*?)```" text) :d))))

(define r (parse reply))
(println "record:" r "review?" (review? r))
(println "verdict:" (review-verdict r) "confidence:" (review-confidence r))
(println "reasons:" (review-reasons r))
(println "files:" (cadr (assq 'files (review-data r))))
(set-review-confidence! r 0.5)
(println "after an update:" (review-confidence r))
;; The accessors check the type: a plain list is not a review.
(println (try (review-verdict '(approve)) (catch e (error-message e))))
