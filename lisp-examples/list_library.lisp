;; The SRFI-1 / SRFI-13 subset an LLM reaches for (iota, fold, any, every, partition,
;; filter-map, delete-duplicates, take, string-prefix?, string-contains…), on a batch of
;; model replies: keep the usable ones, rank them, and report.
;;
;;   omega run lisp-examples/list_library.lisp

(define replies
  '("ANSWER: 42" "I cannot help with that." "ANSWER: 17" "answer: 42" "ANSWER: 99 (unsure)"
    "Sorry, as an AI…" "ANSWER: 17"))

;; "ANSWER: 42" -> 42; anything else -> #f.
(define (answer reply)
  (and (string-prefix? "ANSWER: " reply)
       (string->number (car (string-split (substring reply 8 (string-length reply)) " ")))))

(define numbered (map cons (iota (length replies) 1) replies))
(call-with-values
    (lambda () (partition (lambda (entry) (answer (cdr entry))) numbered))
  (lambda (usable refused)
    (println "usable replies:" (map car usable))
    (println "refusals mentioning help or AI:"
             (count (lambda (e) (or (string-contains (cdr e) "help") (string-contains (cdr e) "AI")))
                    refused))))

(define answers (filter-map answer replies))
(println "distinct answers:" (delete-duplicates answers))
(println (str "sum: " (fold + 0 answers) ", largest: " (fold max 0 answers)))
(println (str "all below 100? " (every (lambda (n) (< n 100)) answers)
              ", any even? " (any even? answers)))
(println "top two by votes:"
         (take (sort (map (lambda (a) (list a (count (lambda (b) (= a b)) answers)))
                          (delete-duplicates answers))
                     (lambda (x y) (> (cadr x) (cadr y))))
               2))
