;; Text processing with characters: split an LLM-style reply into sentences, count its words,
;; and capitalise each sentence — with string-ref, char-whitespace? and friends (SPEC §6.9).
;; Indices are characters, not bytes, so the accents and the emoji below are safe to cut around.
;;
;;   omega run lisp-examples/text.lisp

(define reply
  "Sure!  Here is the plan: first, fetch the café menu.  then compare prices… Does that work? 😀 let me know.")

(define (sentence-end? c) (memv c '(#\. #\! #\? #\…)))

;; The sentences of text: a sentence ends at . ! ? or … followed by whitespace or the end.
(define (sentences text)
  (let ((n (string-length text)))
    (let loop ((i 0) (start 0) (acc '()))
      (cond ((= i n)
             (reverse (if (< start n) (cons (substring text start n) acc) acc)))
            ((and (sentence-end? (string-ref text i))
                  (or (= (+ i 1) n) (char-whitespace? (string-ref text (+ i 1)))))
             (loop (+ i 1) (+ i 1) (cons (substring text start (+ i 1)) acc)))
            (else (loop (+ i 1) start acc))))))

;; Whitespace-trimmed, first letter upper-cased.
(define (tidy s)
  (let ((t (string-trim s)))
    (if (string=? t "")
        t
        (string-append (string (char-upcase (string-ref t 0))) (substring t 1)))))

(define (count-words text)
  (let ((n (string-length text)))
    (let loop ((i 0) (in-word #f) (words 0))
      (if (= i n)
          words
          (let ((space (char-whitespace? (string-ref text i))))
            (loop (+ i 1) (not space) (if (and (not space) (not in-word)) (+ words 1) words)))))))

(define parts (filter (lambda (s) (not (string=? s ""))) (map tidy (sentences reply))))
(for-each (lambda (s i) (println (str i ". " s))) parts (range 1 (+ 1 (length parts))))
(println "words:" (count-words reply) "characters:" (string-length reply))
(println "non-ASCII:" (list->string (filter (lambda (c) (> (char->integer c) 127)) (string->list reply))))
