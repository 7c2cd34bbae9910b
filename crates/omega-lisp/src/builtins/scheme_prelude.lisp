;; The Scheme-surface procedures of SPEC §6.9 that call procedures, written in Lisp (like the
;; prelude above) so the procedures they call can tail-call, raise and suspend: the predicate
;; forms of the natives `member` and `assoc` (which hand those calls here), `string-map`,
;; `string-for-each`, `string-index`; and the SRFI-1 subset at the end. Loaded right after
;; prelude.lisp.

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

;; Multiple values (builtins/values.rs): `values` of one argument is the argument, of any other
;; number a multiple-values object that the forms below spread into arguments.

;; (call-with-values producer consumer): (consumer v…) for the values v… of (producer).
(define (call-with-values producer consumer)
  (%check-proc "call-with-values" producer)
  (%check-proc "call-with-values" consumer)
  (apply consumer (%values->list (producer))))

;; (receive formals expr body…): body with formals bound to the values of expr (SRFI 8).
(defmacro receive (formals expr . body)
  `(apply (lambda ,formals ,@body) (%values->list ,expr)))

;; (let-values (((formals) expr) …) body…): every expr is evaluated outside all the bindings.
(defmacro let-values (bindings . body)
  (let ((temps (map (lambda (b) (gensym "vals")) bindings)))
    `(let ,(map (lambda (b t) (list t (list '%values->list (cadr b)))) bindings temps)
       ,(let inner ((bs bindings) (ts temps))
          (if (null? bs)
              `((lambda () ,@body))
              `(apply (lambda ,(car (car bs)) ,(inner (cdr bs) (cdr ts))) ,(car ts)))))))

;; (let*-values (((formals) expr) …) body…): each expr sees the bindings before it.
(defmacro let*-values (bindings . body)
  (if (null? bindings)
      `((lambda () ,@body))
      `(apply (lambda ,(car (car bindings)) (let*-values ,(cdr bindings) ,@body))
              (%values->list ,(cadr (car bindings))))))

;; (define-values formals expr): defines each variable of formals (a list, possibly dotted, or
;; one symbol) to the matching value of expr; a count mismatch is the lambda's arity error.
(defmacro define-values (formals expr)
  (let ((names (let collect ((f formals) (acc '()))
                 (cond ((null? f) (reverse acc))
                       ((symbol? f) (reverse (cons f acc)))
                       (else (collect (cdr f) (cons (car f) acc))))))
        (all (gensym "vals")))
    `(begin
       (define ,all (apply (lambda ,formals (list ,@names)) (%values->list ,expr)))
       ,@(let loop ((ns names) (i 0) (acc '()))
           (if (null? ns)
               (reverse acc)
               (loop (cdr ns) (+ i 1) (cons `(define ,(car ns) (list-ref ,all ,i)) acc)))))))

;; (case-lambda (formals body…) …): a procedure that runs the first clause whose formals accept
;; the number of arguments; none is an :arity-error listing the counts the clauses accept.
(define (%formals-arity f)
  (let loop ((f f) (k 0))
    (cond ((null? f) (cons k #f))
          ((symbol? f) (cons k #t))
          ((pair? f) (loop (cdr f) (+ k 1)))
          (else (error :syntax (str "case-lambda: bad formals " f))))))

(define (%case-lambda-fail n arities)
  (error :arity-error
         (str "case-lambda procedure expects "
              (string-join (map (lambda (a) (if (cdr a) (str (car a) " or more") (str (car a))))
                                arities)
                           ", ")
              " arguments, got " n)))

(defmacro case-lambda clauses
  (let ((args (gensym "args"))
        (n (gensym "n"))
        (arities (map (lambda (c) (%formals-arity (car c))) clauses)))
    `(lambda ,args
       (let ((,n (length ,args)))
         (cond ,@(map (lambda (c a)
                        `((,(if (cdr a) '>= '=) ,n ,(car a))
                          (apply (lambda ,(car c) ,@(cdr c)) ,args)))
                      clauses arities)
               ;; Not a tail call, so the report's stack names the procedure.
               (else (%case-lambda-fail ,n ',arities) #f))))))

;; ---------------------------------------------------------------------------------------------
;; Scheme control (issue 15; builtins/control.rs, builtins/promises.rs): dynamic-wind,
;; exception handlers and guard, parameters, promises. `call/cc` (escape-only) is native.
;;
;; The task's dynamic environment (%dynamic-env) is a pair (parameter-bindings . handlers), or
;; nil when empty: parameter-bindings an alist (parameter . value), handlers a list of the
;; procedures installed by with-exception-handler (innermost first), in which %guard marks a
;; guard. A child task starts with its parent's at the spawn. It is only changed through
;; %with-dynamic-env, which restores it on every exit (return, error, escape, cancellation).

(define (%env-params) (let ((d (%dynamic-env))) (if (pair? d) (car d) '())))
(define (%env-handlers) (let ((d (%dynamic-env))) (if (pair? d) (cdr d) '())))

(define (%with-dynamic-env env thunk)
  (let ((old (%dynamic-env)))
    (%set-dynamic-env! env)
    (try (thunk) (finally (%set-dynamic-env! old)))))

;; (dynamic-wind before thunk after): after runs however thunk is left — return, error,
;; escape to a continuation, cancellation (shielded, like a finally block). Continuations
;; cannot re-enter, so before runs once.
(define (dynamic-wind before thunk after)
  (%check-proc "dynamic-wind" before)
  (%check-proc "dynamic-wind" thunk)
  (%check-proc "dynamic-wind" after)
  (before)
  (try (thunk) (finally (after))))

;; (with-exception-handler handler thunk): R7RS. Which errors reach handler, and when:
;; * raise, error (and a guard's re-raise) called from Lisp call handler in the dynamic
;;   environment of the raise, before unwinding (unless a guard or a try with a catch is in
;;   between: that takes the error first, as always): finally blocks and dynamic-wind after-thunks
;;   run after it (when it escapes, or when the error goes on). handler runs with the outer
;;   handlers; if it returns, a secondary error ("the handler returned from a non-continuable
;;   raise") is raised there, to the next handler out, and so on.
;; * Errors raised by builtins (a type error, an arity error, (car 1), :timeout, an awaited
;;   task's error, ...) unwind to here first, then handler is called with the outer handlers,
;;   and a return is the same secondary error.
;; * raise-continuable calls handler where it was raised and returns its value there.
;; * A cancelled task's handler is not called: the cancellation goes on (SPEC §3.7, a
;;   catch-all cannot end it). :limit errors pass every handler, like every catch.
;; * A task spawned inside thunk starts behind the mark %inherited: a raise in it does not call
;;   handler before it unwinds; its error reaches handler through await, as a builtin's does.
;; The handler list entry (handler . outer) is this call's own: an error the Lisp raise already
;; handed to it (%dispatched-past?) passes on unchanged.
(define (with-exception-handler handler thunk)
  (%check-proc "with-exception-handler" handler)
  (%check-proc "with-exception-handler" thunk)
  (let ((entry (cons handler (%env-handlers))))
    (try (%with-dynamic-env (cons (%env-params) entry) thunk)
         (catch e
           (%check-cancel)
           (if (%dispatched-past? e entry)
               (%reraise e)
               (let ((obj (%condition e)))
                 (handler obj)
                 (error "with-exception-handler: the handler returned from a non-continuable raise of"
                        obj)))))))

;; (%raise-dispatch obj…) and (%error-dispatch arg…): what the natives raise and error hand
;; their call to when the innermost handler is this task's own: each handler of the task in
;; turn, innermost first, up to a guard's mark, the %inherited mark or the end, is called with
;; the outer handlers (a return makes the secondary error, handed to the next one); then the
;; error is raised, marked as handed to all of them.
(define (%raise-dispatch . args)
  (%dispatch (if (and (pair? args) (null? (cdr args)) (not (keyword? (car args))))
                 (%condition (car args))
                 (apply %make-error args))))

(define (%error-dispatch . args) (%dispatch (apply %make-error args)))

(define (%dispatch obj)
  (let ((start (%env-handlers)))
    (let dispatch ((obj obj) (hs start))
      (if (and (pair? hs) (procedure? (car hs)))
          (begin
            (%call-handler (car hs) (cdr hs) obj start)
            (dispatch (%make-error
                       "with-exception-handler: the handler returned from a non-continuable raise of"
                       obj)
                      (cdr hs)))
          (%raise-dispatched obj start hs)))))

;; Calls handler h with the outer handlers; an error leaving it is marked as handed to every
;; handler from start up to outer (or further), so the with-exception-handlers it unwinds
;; through do not call their handlers with it.
(define (%call-handler h outer obj start)
  (try (%with-dynamic-env (cons (%env-params) outer) (lambda () (h obj)))
       (catch e
         (%check-cancel)
         (%reraise-handled e start outer))))

;; (raise-continuable obj): (handler obj) with the innermost handler, run with the handlers
;; outside it; its value is returned. It looks past the %inherited mark (a child task's
;; handlers from its parent) and a try's %catch-mark (so it reaches the handler as before). With no handler, or a guard innermost, it is raise.
(define (raise-continuable obj)
  (let find ((hs (%env-handlers)))
    (cond ((or (null? hs) (eq? (car hs) '%guard)) (raise obj))
          ((or (eq? (car hs) '%inherited) (eq? (car hs) '%catch-mark)) (find (cdr hs)))
          (else
           (%with-dynamic-env (cons (%env-params) (cdr hs)) (lambda () ((car hs) obj)))))))

;; `%raise` is `raise` under a name a script does not rebind (defined with the native).

(define (%guard-body thunk)
  (%with-dynamic-env (cons (%env-params) (cons '%guard (%env-handlers))) thunk))

;; The clauses of guard as nested ifs; no clause matches: re-raise the error.
(define (%guard-clauses clauses e)
  (if (null? clauses)
      `(%raise ,e)
      (let ((c (car clauses)) (t (gensym "test")))
        (cond ((not (pair? c)) (error :syntax (str "guard: bad clause " c)))
              ((eq? (car c) 'else) `(begin ,@(cdr c)))
              ((and (pair? (cdr c)) (eq? (cadr c) '=>))
               `(let ((,t ,(car c)))
                  (if ,t (,(car (cddr c)) ,t) ,(%guard-clauses (cdr clauses) e))))
              ((null? (cdr c))
               `(let ((,t ,(car c))) (if ,t ,t ,(%guard-clauses (cdr clauses) e))))
              (else `(if ,(car c) (begin ,@(cdr c)) ,(%guard-clauses (cdr clauses) e)))))))

;; (guard (var clause…) body…): R7RS. An error raised in body (by raise, raise-continuable,
;; error or a builtin) unwinds to the guard, binds var to the raised object (the error value
;; itself for errors) and evaluates the clauses like cond (with else and =>); if none
;; matches, the error is raised again from the guard (with raise: handlers outside the guard
;; are called before it unwinds further). Like try's catch, a guard cannot end a
;; cancellation: it is raised again after the clause.
(defmacro guard (spec . body)
  (if (not (and (pair? spec) (symbol? (car spec))))
      (error :syntax "guard expects (guard (var clause…) body…)"))
  (let ((e (gensym "e")))
    `(try (%guard-body (lambda () ,@body))
          (catch ,e
            (let ((,(car spec) (%condition ,e)))
              ,(%guard-clauses (cdr spec) e))))))

;; Parameters. (make-parameter value [converter]) is a procedure of no arguments returning
;; the value bound by the innermost parameterize of this task, else (converter value).
;; Called with `%param-tag` (a unique list, defined with the natives) it returns its converter.
(define (make-parameter value . conv)
  (if (pair? conv) (%check-proc "make-parameter" (car conv)))
  (%make-parameter value (if (pair? conv) (car conv) #f)))

;; Every parameter is a closure of the one lambda below, which is how `%param-converter` tells
;; a parameter from another procedure (whatever a script rebinds `make-parameter` to).
(define (%make-parameter value converter)
  (let ((global (if converter (converter value) value)))
    (letrec ((parameter
              (lambda args
                (cond ((null? args)
                       (let ((b (assq parameter (%env-params)))) (if b (cdr b) global)))
                      ((eq? (car args) %param-tag) converter)
                      (else (error :arity-error
                                   (str "a parameter expects 0 arguments, got "
                                        (length args))))))))
      parameter)))

(define (%param-converter p)
  (if (%same-code? p (%make-parameter #f #f))
      (p %param-tag)
      (%type-error "parameterize" "a parameter" p)))

;; (parameterize ((param value) …) body…): body with each param bound to (converter value);
;; the bindings end however body is left.
(defmacro parameterize (bindings . body)
  `(%parameterize (list ,@(map (lambda (b) `(cons ,(car b) ,(cadr b))) bindings))
                  (lambda () ,@body)))

(define (%parameterize bindings thunk)
  (let loop ((bs bindings) (params (%env-params)))
    (if (null? bs)
        (%with-dynamic-env (cons params (%env-handlers)) thunk)
        (let* ((p (car (car bs)))
               (conv (%param-converter p))
               (v (cdr (car bs))))
          (loop (cdr bs) (cons (cons p (if conv (conv v) v)) params))))))

;; Promises (R7RS; builtins/promises.rs). Forcing a delay-force chain loops in constant stack.
(defmacro delay (expr) `(%make-lazy (lambda () ,expr) #t))
(defmacro delay-force (expr) `(%make-lazy (lambda () ,expr) #f))

(define (force p)
  (if (promise? p)
      (let force ((p (%promise-root p)))
        (let ((s (%promise-step p)))
          (cond ((eq? (car s) #t) (cdr s))
                ((eq? (car s) :delay)
                 (%promise-resolve! p ((cdr s)))
                 (force (%promise-root p)))
                (else
                 (%promise-update! ((cdr s)) p)
                 (force (%promise-root p))))))
      p))

;; ---- Vectors and records (issue 15) ----------------------------------------------------------
;; (vector-map f v1 v2 …) and (vector-for-each f v1 v2 …): like map/for-each over the vectors'
;; elements, up to the shortest vector.
(define (vector-map f v . more)
  (%check-proc "vector-map" f)
  (if (null? more)
      (list->vector (map f (vector->list v)))
      (list->vector (apply map f (vector->list v) (map vector->list more)))))

(define (vector-for-each f v . more)
  (%check-proc "vector-for-each" f)
  (if (null? more)
      (for-each f (vector->list v))
      (apply for-each f (vector->list v) (map vector->list more)))
  nil)

(define (%record-field-index who fields name)
  (let loop ((fs fields) (i 0))
    (cond ((null? fs) (error :syntax (str "define-record-type: " who " names " name
                                          ", which is not a field")))
          ((eq? (car fs) name) i)
          (else (loop (cdr fs) (+ i 1))))))

;; (define-record-type <point> (make-point x y) point? (x point-x set-point-x!) (y point-y)):
;; R7RS records over the native %record primitives (builtins/records.rs). The type name is bound
;; to the record type; the constructor may name a subset of the fields (the others start as
;; nil) or be a bare name (all fields, in order).
(defmacro define-record-type (type ctor pred . specs)
  (let* ((specs (map (lambda (s) (if (pair? s) s (list s))) specs))
         (fields (map car specs))
         (ctor-name (if (pair? ctor) (car ctor) ctor))
         (ctor-args (if (pair? ctor) (cdr ctor) fields))
         (obj (gensym "obj"))
         (val (gensym "val")))
    (for-each (lambda (a) (%record-field-index ctor-name fields a)) ctor-args)
    `(begin
       (define ,type (%make-record-type ',type ',fields))
       ,@(if ctor-name
             `((define (,ctor-name ,@ctor-args)
                 (%record ,type ,@(map (lambda (f) (if (memq f ctor-args) f 'nil)) fields))))
             '())
       ,@(if pred `((define (,pred ,obj) (%record? ,type ,obj))) '())
       ,@(apply append
                (map (lambda (s)
                       (let ((i (%record-field-index (car s) fields (car s))))
                         (append
                          (if (pair? (cdr s))
                              `((define (,(cadr s) ,obj) (%record-ref ,type ,obj ,i ',(cadr s))))
                              '())
                          (if (and (pair? (cdr s)) (pair? (cddr s)))
                              `((define (,(caddr s) ,obj ,val)
                                  (%record-set! ,type ,obj ,i ,val ',(caddr s))))
                              '()))))
                     specs)))))

;; Strings are immutable and shared in Omega (a string value is one reference-counted buffer),
;; so R7RS string-set! and string-fill! are errors that say what to do instead.
(define (%immutable-string who)
  (error (str who ": strings are immutable in Omega; build a new string with string-append,"
              " string-copy, list->string or a string port")))
(define (string-set! s k c) (%immutable-string "string-set!"))
(define (string-fill! s c . range) (%immutable-string "string-fill!"))

;; SRFI-1 (lists) and SRFI-13 (strings): the names LLM-written Scheme reaches for most, with
;; SRFI meaning. `fold` calls (kons elem acc) like SRFI-1; `fold-left` (f acc elem) and
;; `fold-right` (f elem acc) like R6RS. Several lists stop at the shortest.

(define (%check-list who lst)
  (if (list? lst) #t (%type-error who "a list" lst)))

(define (%check-count who k)
  (if (and (exact-integer? k) (>= k 0)) #t (%type-error who "a non-negative integer" k)))

;; (iota count [start [step]]): count numbers from start (0) by step (1); `range` builds it, so
;; max_list_len holds.
(define (iota count . opt)
  (%check-count "iota" count)
  (if (null? opt)
      (range count)
      (let ((start (car opt))
            (step (if (pair? (cdr opt)) (cadr opt) 1)))
        (if (number? start) #t (%type-error "iota" "a number" start))
        (if (number? step) #t (%type-error "iota" "a number" step))
        (map (lambda (i) (+ start (* i step))) (range count)))))

;; The rows of several lists, up to the shortest: ((a1 b1 …) (a2 b2 …) …).
(define (%rows who lists)
  (%check-lists who lists)
  (let rows ((ls lists) (acc '()))
    (if (%any-null? ls) (reverse acc) (rows (%cdrs ls) (cons (%cars ls) acc)))))

(define (fold kons knil lst . more)
  (%check-proc "fold" kons)
  (if (null? more)
      (begin
        (%check-list "fold" lst)
        (let fold ((l lst) (acc knil))
          (if (null? l) acc (fold (cdr l) (kons (car l) acc)))))
      (let fold ((rs (%rows "fold" (cons lst more))) (acc knil))
        (if (null? rs) acc (fold (cdr rs) (apply kons (append (car rs) (list acc))))))))

(define (fold-left f init lst . more)
  (%check-proc "fold-left" f)
  (if (null? more)
      (begin (%check-list "fold-left" lst) (foldl f init lst))
      (let fold-left ((rs (%rows "fold-left" (cons lst more))) (acc init))
        (if (null? rs) acc (fold-left (cdr rs) (apply f acc (car rs)))))))

(define (fold-right f init lst . more)
  (%check-proc "fold-right" f)
  (if (null? more)
      (begin (%check-list "fold-right" lst) (foldr f init lst))
      (let fold-right ((rs (reverse (%rows "fold-right" (cons lst more)))) (acc init))
        (if (null? rs) acc (fold-right (cdr rs) (apply f (append (car rs) (list acc))))))))

;; (any pred lst …): the first true value of pred, or #f. (every pred lst …): #f at the first
;; false value, else the last value (#t for empty lists).
(define (any pred lst . more)
  (%check-proc "any" pred)
  (if (null? more)
      (begin
        (%check-list "any" lst)
        (let any ((l lst))
          (cond ((null? l) #f) ((pred (car l)) => (lambda (v) v)) (else (any (cdr l))))))
      (let any ((rs (%rows "any" (cons lst more))))
        (cond ((null? rs) #f) ((apply pred (car rs)) => (lambda (v) v)) (else (any (cdr rs)))))))

(define (every pred lst . more)
  (%check-proc "every" pred)
  (let every ((rs (if (null? more)
                      (begin (%check-list "every" lst) (map list lst))
                      (%rows "every" (cons lst more))))
              (last #t))
    (if (null? rs)
        last
        (let ((v (apply pred (car rs))))
          (if v (every (cdr rs) v) #f)))))

(define (find-tail pred lst)
  (%check-proc "find-tail" pred)
  (%check-list "find-tail" lst)
  (let find-tail ((l lst))
    (cond ((null? l) #f) ((pred (car l)) l) (else (find-tail (cdr l))))))

(define (find pred lst)
  (let ((tail (find-tail pred lst)))
    (if tail (car tail) #f)))

(define (list-index pred lst)
  (%check-proc "list-index" pred)
  (%check-list "list-index" lst)
  (let list-index ((l lst) (i 0))
    (cond ((null? l) #f) ((pred (car l)) i) (else (list-index (cdr l) (+ i 1))))))

(define (filter-map f lst . more)
  (%check-proc "filter-map" f)
  (filter (lambda (v) v) (apply map f lst more)))

(define (append-map f lst . more)
  (%check-proc "append-map" f)
  (apply append (apply map f lst more)))

(define (remove pred lst)
  (%check-proc "remove" pred)
  (filter (lambda (x) (not (pred x))) lst))

(define (partition pred lst)
  (%check-proc "partition" pred)
  (%check-list "partition" lst)
  (let partition ((l lst) (in '()) (out '()))
    (cond ((null? l) (values (reverse in) (reverse out)))
          ((pred (car l)) (partition (cdr l) (cons (car l) in) out))
          (else (partition (cdr l) in (cons (car l) out))))))

;; (delete x lst [=]): lst without the elements equal to x (equal? by default).
(define (delete x lst . opt)
  (let ((same? (if (pair? opt) (car opt) equal?)))
    (%check-proc "delete" same?)
    (%check-list "delete" lst)
    (filter (lambda (y) (not (same? x y))) lst)))

;; (delete-duplicates lst same?): the native `delete-duplicates` (list_ops.rs, O(n log n) for
;; `equal?`) hands its two-argument calls here: the first of each group of elements `same?`
;; calls equal, in order (quadratic).
(define (%delete-duplicates-by lst same?)
  (%check-proc "delete-duplicates" same?)
  (%check-list "delete-duplicates" lst)
  (let delete-duplicates ((l lst) (acc '()))
    (cond ((null? l) (reverse acc))
          ((any (lambda (y) (same? y (car l))) acc) (delete-duplicates (cdr l) acc))
          (else (delete-duplicates (cdr l) (cons (car l) acc))))))

(define (take lst k)
  (%check-count "take" k)
  (let take ((l lst) (i k) (acc '()))
    (cond ((= i 0) (reverse acc))
          ((pair? l) (take (cdr l) (- i 1) (cons (car l) acc)))
          (else (error (str "take: " k " elements asked of a list with " (- k i)))))))

(define (drop lst k)
  (%check-count "drop" k)
  (let drop ((l lst) (i k))
    (cond ((= i 0) l)
          ((pair? l) (drop (cdr l) (- i 1)))
          (else (error (str "drop: " k " elements asked of a list with " (- k i)))))))

(define (take-while pred lst)
  (%check-proc "take-while" pred)
  (%check-list "take-while" lst)
  (let take-while ((l lst) (acc '()))
    (if (and (pair? l) (pred (car l)))
        (take-while (cdr l) (cons (car l) acc))
        (reverse acc))))

(define (drop-while pred lst)
  (%check-proc "drop-while" pred)
  (%check-list "drop-while" lst)
  (let drop-while ((l lst))
    (if (and (pair? l) (pred (car l))) (drop-while (cdr l)) l)))

(define (third lst) (car (cddr lst)))

;; (count coll) is Omega's size of a map, list or string; (count pred lst …) is SRFI-1's
;; number of elements that satisfy pred.
;; (`%count` is the native size.)
(define (count x . more)
  (if (null? more)
      (%count x)
      (begin
        (%check-proc "count" x)
        (fold (lambda (row n) (if (apply x row) (+ n 1) n))
              0
              (if (null? (cdr more))
                  (begin (%check-list "count" (car more)) (map list (car more)))
                  (%rows "count" more))))))
