;; The Scheme-surface procedures of SPEC §6.9 that call procedures, written in Lisp (like the
;; prelude above) so the procedures they call can tail-call, raise and suspend: the predicate
;; forms of the natives `member` and `assoc` (which hand those calls here), `string-map`,
;; `string-for-each`, `string-index`. Loaded right after prelude.lisp.

;; (member x lst same?): the native `member` hands its three-argument calls here.
(define (%member-by x lst same?)
  (%check-proc "member" same?)
  (let member ((l lst))
    (cond ((null? l) #f)
          ((pair? l) (if (same? x (car l)) l (member (cdr l))))
          (else (%type-error "member" "a list" lst)))))

;; (assoc key alist same?): the native `assoc` hands its three-argument calls on lists here.
(define (%assoc-by x alist same?)
  (%check-proc "assoc" same?)
  (let assoc ((l alist))
    (cond ((null? l) #f)
          ((not (pair? l)) (%type-error "assoc" "a list" alist))
          ((not (pair? (car l)))
           (%type-error "assoc" "an association list (a list of pairs)" (car l)))
          ((same? x (car (car l))) (car l))
          (else (assoc (cdr l))))))

(define (%char-result who x)
  (if (char? x) x (%type-error who "its procedure to return a char" x)))

;; (string-map f s1 s2 …): the string of (f c1 c2 …), as long as the shortest string.
(define (string-map f s . more)
  (%check-proc "string-map" f)
  (if (null? more)
      (let string-map ((l (string->list s)) (acc '()))
        (if (null? l)
            (list->string (reverse acc))
            (string-map (cdr l) (cons (%char-result "string-map" (f (car l))) acc))))
      (list->string
       (apply map
              (lambda cs (%char-result "string-map" (apply f cs)))
              (string->list s)
              (map string->list more)))))

;; (string-for-each f s1 s2 …): calls (f c1 c2 …) left to right, for its effects.
(define (string-for-each f s . more)
  (%check-proc "string-for-each" f)
  (if (null? more)
      (for-each f (string->list s))
      (apply for-each f (string->list s) (map string->list more))))

;; (string-index s pred-or-char): the index of the first character that satisfies pred (or is
;; char=? to the char), or #f.
(define (string-index s pred)
  (let ((test (cond ((char? pred) (lambda (c) (char=? c pred)))
                    ((procedure? pred) pred)
                    (else (%type-error "string-index" "a char or a procedure" pred)))))
    (let string-index ((l (string->list s)) (i 0))
      (cond ((null? l) #f)
            ((test (car l)) i)
            (else (string-index (cdr l) (+ i 1)))))))

;; (call-with-output-string f): calls (f port) with a fresh string port, returns what it wrote.
(define (call-with-output-string f)
  (%check-proc "call-with-output-string" f)
  (let ((port (open-output-string)))
    (f port)
    (get-output-string port)))
