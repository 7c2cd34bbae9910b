;; Parsing an LLM-style reply with regexes, string ports and multiple values (SPEC §6.9): pull
;; out the fenced data block and `read` it, collect the "key: value" lines, find the numbers,
;; and write a report into a string port.
;;
;;   omega run lisp-examples/parse_reply.lisp

(define reply
  "Sure! Here is what I found.

Title: Café prices
Confidence: 0.82
Items: 3

```scheme
(menu (espresso 2.5) (latte 3.2) (croissant 1.9))
```

Total for two lattes: 6.4 euros. Let me know if you need more!")

;; The fenced block's text: a named group of a multi-line pattern ((?s) lets . match newlines).
(define block (get (regex-match "(?s)```scheme\\n(?<code>.*?)```" reply) :code))

;; read turns the block into data, one datum at a time, until the end-of-file object.
(define (read-all text)
  (let ((in (open-input-string text)))
    (let loop ((acc '()))
      (let ((d (read in)))
        (if (eof-object? d) (reverse acc) (loop (cons d acc)))))))

(define menu (cdr (car (read-all block))))

;; "Key: value" header lines, line by line through a port: a list of (key value) pairs.
(define (headers text)
  (let ((in (open-input-string text)))
    (let loop ((acc '()))
      (let ((line (read-line in)))
        (cond ((eof-object? line) (reverse acc))
              ((regex-match "^(\\w+): (.+)$" line)
               => (lambda (m) (loop (cons (cdr m) acc))))
              (else (loop acc)))))))

;; The cheapest item, with its price: two values.
(define (cheapest items)
  (let loop ((best (car items)) (rest (cdr items)))
    (cond ((null? rest) (values (car best) (cadr best)))
          ((< (cadr (car rest)) (cadr best)) (loop (car rest) (cdr rest)))
          (else (loop best (cdr rest))))))

(define-values (item price) (cheapest menu))

(define out (open-output-string))
(for-each (lambda (kv) (display (car kv) out) (write-string " = " out) (write (cadr kv) out) (newline out))
          (headers reply))
(write-string "menu: " out)
(write (map car menu) out)
(newline out)
(display (str "cheapest: " item " at " price) out)
(newline out)
(display (str "numbers in the prose: "
              (string-join (regex-find-all "\\d+(?:\\.\\d+)?" (regex-replace "(?s)```.*?```" reply "")) ", "))
         out)
(newline out)
(display (str "sentences: " (length (regex-split "[.!?]\\s+" (car (regex-split "\\n\\n" reply))))) out)
(newline out)
(display (get-output-string out))
