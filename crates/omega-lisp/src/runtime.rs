//! The embedding facade (SPEC §6.8, synchronous part): [`Runtime`], its builder, host function
//! registration, and a capturable output sink.
//!
//! # How to evaluate
//!
//! A runtime has few entry points, each for one need:
//!
//! | call | for |
//! |---|---|
//! | [`Runtime::eval_str`]`(src, name).await` | a script, as a task on the runtime's scheduler: `await`, `llm.infer`, `sleep`… work; tasks it leaves behind are cancelled and waited for |
//! | [`Runtime::spawn_str`] / [`Runtime::spawn_file`] | a script as a task with [`omega_sched::TaskOptions`] (priority, timeout), to await, cancel or inspect later |
//! | [`Runtime::eval_sync`] | a script that never suspends (configuration, pure computation), with no scheduler; one that awaits fails with a clear error |
//! | [`Runtime::call`] | calling a Lisp procedure from the host, synchronously (callbacks) |
//! | [`Runtime::eval_interactive`] | a REPL: like `eval_str`, but tasks a line spawns live on for later lines |
//!
//! The async calls must run on the thread that drives the scheduler (inside
//! `Scheduler::run_until` / `block_on`). A multi-threaded host uses [`crate::Engine`] instead.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;

use omega_llm::LlmProvider;
use omega_sched::Scheduler;

use crate::builtins;
use crate::bytecode::Proto;
use crate::error::{LispError, LispResult};
use crate::fiber::Fiber;
use crate::limits::Limits;
use crate::native::{Native, NativeKind, Suspension};
use crate::reader;
use crate::state::{AsyncCtx, Shared, State};
use crate::symbol::Symbol;
use crate::value::{Closure, Value};

/// The special forms the expander knows, and the words that have meaning inside them (for
/// [`Runtime::names`]; macros such as `with-lock` or `let-values` are listed from the runtime).
const SPECIAL_FORMS: &[&str] = &[
    "quote",
    "quasiquote",
    "unquote",
    "unquote-splicing",
    "define",
    "defmacro",
    "set!",
    "lambda",
    "fn",
    "let",
    "let*",
    "letrec",
    "letrec*",
    "if",
    "cond",
    "case",
    "when",
    "unless",
    "and",
    "or",
    "begin",
    "do",
    "try",
    "catch",
    "finally",
    "shield",
    "else",
    "define-syntax",
    "let-syntax",
    "letrec-syntax",
    "syntax-rules",
];

/// A Lisp runtime: globals, macros, builtins, limits and output sink. Single-threaded (`!Send`);
/// run one per thread.
///
/// # Examples
///
/// ```
/// let rt = omega_lisp::Runtime::new();
/// let v = rt.eval_sync("(+ 1 2)", "<inline>").unwrap();
/// assert_eq!(v, omega_lisp::Value::Int(3));
///
/// // Scripts that await run as tasks on the runtime's scheduler:
/// let sched = rt.scheduler();
/// let v = sched.block_on(rt.eval_str(
///     "(await-all (list (async (lambda () (llm.infer \"a\"))) (async (lambda () 2))))",
///     "<doc>",
/// ));
/// assert_eq!(omega_lisp::write_string(&v.unwrap()), "(\"echo: a\" 2)");
/// ```
#[derive(Clone)]
pub struct Runtime {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime { .. }")
    }
}

/// Builds a [`Runtime`].
pub struct RuntimeBuilder {
    limits: Limits,
    output: Option<Box<dyn Write>>,
    seed: u64,
    scheduler: Option<Scheduler>,
    llm: Option<Arc<dyn LlmProvider>>,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("limits", &self.limits)
            .field("seed", &self.seed)
            .finish()
    }
}

impl RuntimeBuilder {
    /// Sets the limits (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> RuntimeBuilder {
        self.limits = limits;
        self
    }

    /// Sends `display`/`print`/`write` output to `out` (default: stdout).
    pub fn output(mut self, out: impl Write + 'static) -> RuntimeBuilder {
        self.output = Some(Box::new(out));
        self
    }

    /// Seeds `random` (default: a fixed seed, so runs are reproducible).
    pub fn seed(mut self, seed: u64) -> RuntimeBuilder {
        self.seed = seed;
        self
    }

    /// The scheduler that runs this runtime's tasks (default: a new `Scheduler` with default
    /// settings). Tasks run on the thread that drives it.
    pub fn scheduler(mut self, sched: Scheduler) -> RuntimeBuilder {
        self.scheduler = Some(sched);
        self
    }

    /// The provider `llm.infer` calls (default: [`omega_llm::MockProvider`], which echoes).
    pub fn llm(mut self, provider: Arc<dyn LlmProvider>) -> RuntimeBuilder {
        self.llm = Some(provider);
        self
    }

    /// Builds the runtime: installs the builtins and the async surface, and evaluates the
    /// preludes.
    pub fn build(self) -> Runtime {
        self.build_with(|_| {})
    }

    /// [`RuntimeBuilder::build`], calling `before_preludes` on the state once the builtins are
    /// installed, before the preludes load.
    fn build_with(self, before_preludes: impl FnOnce(&mut State)) -> Runtime {
        let output = self.output.unwrap_or_else(|| Box::new(std::io::stdout()));
        let mut st = State::new(self.limits.clone(), output, self.seed);
        builtins::install(&mut st);
        let ctx = Rc::new(AsyncCtx::new(
            self.scheduler.unwrap_or_default(),
            self.llm
                .unwrap_or_else(|| Arc::new(omega_llm::MockProvider::new())),
            &self.limits,
        ));
        let rt = Runtime {
            shared: Rc::new(Shared {
                state: RefCell::new(st),
                async_ctx: ctx.clone(),
            }),
        };
        let weak = Rc::downgrade(&rt.shared);
        rt.with_state(|st| builtins::async_surface::install(st, weak, &ctx));
        rt.with_state(before_preludes);
        // The prelude runs without limits, then the real ones apply.
        rt.with_state(|st| st.limits = crate::prelude::loading_limits());
        crate::prelude::load(&rt);
        // What this runtime leaves in cycles is reclaimed even if the thread ends first.
        crate::collector::arm_exit_pass();
        // Work another runtime of the thread charged and did not count (less than a step, or
        // a host's direct native calls) is not this one's: its steps start from nothing.
        crate::work::discard();
        rt.with_state(|st| st.limits = self.limits);
        rt
    }
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime::new()
    }
}

impl Runtime {
    /// A builder with default limits, stdout output and a fixed random seed.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            limits: Limits::default(),
            output: None,
            seed: 0x005E_ED0F_0E6A,
            scheduler: None,
            llm: None,
        }
    }

    /// A runtime with the defaults.
    pub fn new() -> Runtime {
        Runtime::builder().build()
    }

    /// Runs compiled top-level code to the end.
    pub(crate) fn run_proto(&self, proto: Rc<Proto>) -> LispResult<Value> {
        let f = Value::Closure(Rc::new(Closure {
            proto,
            free: Box::new([]),
        }));
        self.call(&f, Vec::new())
    }

    /// Makes this runtime's heap limit the one the reader checks on this thread (`heap.rs`).
    pub(crate) fn set_thread_heap_limit(&self) {
        if let Ok(st) = self.shared.state.try_borrow() {
            crate::heap::set_thread_limit(st.limits.max_heap_bytes);
            reader::set_thread_max_string_len(st.limits.max_string_len);
        }
    }

    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.shared.state.borrow_mut())
    }

    fn try_with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> LispResult<T> {
        let mut st = self.shared.state.try_borrow_mut().map_err(|_| {
            LispError::new(
                crate::error::ErrorKind::Error,
                "the runtime is busy: a host function tried to re-enter it",
            )
        })?;
        Ok(f(&mut st))
    }

    /// Reads, compiles and runs `src` (named `name` in positions and errors) to completion on
    /// this thread, without a scheduler, and returns the value of its last form. For scripts
    /// that never suspend: `async`, `await`, `sleep`, `llm.infer` and async host functions fail
    /// with an error that names [`Runtime::eval_str`], the async entry point.
    pub fn eval_sync(&self, src: &str, name: &str) -> LispResult<Value> {
        self.fiber(src, name)?.run_to_end()
    }

    /// Reads `src` and returns a [`Fiber`] that will run it in slices. Read errors are reported
    /// here; compile errors when the fiber reaches the faulty form.
    pub(crate) fn fiber(&self, src: &str, name: &str) -> LispResult<Fiber> {
        self.set_thread_heap_limit();
        let forms = reader::read_all(src, name)?;
        Ok(Fiber::for_forms(self.shared.clone(), forms, Rc::from(name)))
    }

    /// Reads and compiles `src` without running it (for `omega check`): returns every read or
    /// compile error found. `defmacro` forms are run so that later forms expand; nothing else
    /// is evaluated. A read error stops the check (the rest of the text cannot be trusted).
    pub fn check(&self, src: &str, name: &str) -> Vec<LispError> {
        self.set_thread_heap_limit();
        let forms = match reader::read_all(src, name) {
            Ok(forms) => forms,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        let mut queue: std::collections::VecDeque<reader::Syntax> = forms.into();
        while let Some(form) = queue.pop_front() {
            if let reader::SyntaxKind::List(items, None) = &form.kind {
                let head = items[0].as_symbol().map(|h| h.name());
                if head.as_deref() == Some("begin") {
                    for item in items[1..].iter().rev() {
                        queue.push_front(item.clone());
                    }
                    continue;
                }
                if head.as_deref() == Some("defmacro") {
                    let text = crate::printer::write_string(&form.to_value());
                    if let Err(e) = self.eval_sync(&text, name) {
                        errors.push(e.with_span(form.span.clone()));
                    }
                    continue;
                }
            }
            let compiled = self.try_with_state(|st| {
                // The form's macro calls share one step count, held to `max_steps`.
                st.lent_steps = Some(0);
                let expanded = crate::expander::expand_toplevel(st, &form);
                st.lent_steps = None;
                expanded.and_then(|(expr, vars)| {
                    crate::compiler::compile_toplevel(&expr, &vars, Rc::from(name))
                })
            });
            match compiled {
                Ok(Ok(_)) => {}
                Ok(Err(e)) | Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Calls a Lisp procedure to completion on this thread (like [`Runtime::eval_sync`], the
    /// procedure must not suspend).
    pub fn call(&self, f: &Value, args: Vec<Value>) -> LispResult<Value> {
        self.call_fiber(f, args)?.run_to_end()
    }

    /// A [`Fiber`] that calls `f` with `args` (e.g. a task body's thunk).
    #[allow(dead_code)] // kept beside `fiber` for tests and future callers
    pub(crate) fn call_fiber(&self, f: &Value, args: Vec<Value>) -> LispResult<Fiber> {
        Fiber::for_call(self.shared.clone(), f.clone(), args)
    }

    /// Registers a host function as global `name`. It receives the evaluated arguments and
    /// checks them itself; a panic inside it becomes a `:panic` error.
    pub fn register_fn(&self, name: &str, f: impl Fn(Vec<Value>) -> LispResult<Value> + 'static) {
        self.define_native(Native::new(name, 0, None, NativeKind::Host(Rc::new(f))));
    }

    /// Defines a native that suspends its calling task until the future in its [`Suspension`]
    /// completes (the async surface's waits and [`Runtime::register_async_fn`]), with its arity.
    pub(crate) fn define_suspending(
        &self,
        name: &str,
        min: usize,
        max: Option<usize>,
        f: impl Fn(Vec<Value>) -> LispResult<Suspension> + 'static,
    ) {
        self.define_native(Native::new(
            name,
            min,
            max,
            NativeKind::Suspending(Rc::new(f)),
        ));
    }

    fn define_native(&self, n: Native) {
        let sym = Symbol::intern(n.name());
        self.with_state(|st| {
            let slot = st.global_slot(sym);
            st.define_global(slot, Value::Native(Rc::new(n)));
        });
    }

    /// The value of global `name`, if defined.
    pub fn global(&self, name: &str) -> Option<Value> {
        // A prelude procedure not loaded yet loads now; it cannot fail but on the heap limit.
        self.with_state(|st| crate::prelude::global(st, Symbol::intern(name)).unwrap_or(None))
    }

    /// Every name a script can use here now, sorted: the special forms, the macros, and the
    /// globals defined so far (builtins, the preludes' procedures, the script's own
    /// definitions, host functions). For completion in a REPL or an editor.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = SPECIAL_FORMS.iter().map(|s| s.to_string()).collect();
        self.with_state(|st| {
            names.extend(st.macros.keys().map(|s| s.name().to_string()));
            names.extend(
                st.global_names
                    .iter()
                    .zip(&st.globals)
                    .filter(|(_, v)| v.is_some())
                    .map(|(s, _)| s.name().to_string()),
            );
            names.extend(crate::prelude::pending_names(st).map(|s| s.name().to_string()));
        });
        names.retain(|n| !n.starts_with('%'));
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Defines (or redefines) global `name`.
    pub fn set_global(&self, name: &str, v: Value) {
        self.with_state(|st| {
            let slot = st.global_slot(Symbol::intern(name));
            st.define_global(slot, v);
        });
    }

    /// The current limits.
    pub fn limits(&self) -> Limits {
        self.with_state(|st| st.limits.clone())
    }

    /// Replaces the limits (for evaluations started afterwards; running fibers see the new
    /// values at their next step).
    pub fn set_limits(&self, limits: Limits) -> LispResult<()> {
        self.shared.async_ctx.max_tasks.set(limits.max_tasks);
        self.shared
            .async_ctx
            .max_total_steps
            .set(limits.max_total_steps);
        self.shared
            .async_ctx
            .max_string_len
            .set(limits.max_string_len);
        self.try_with_state(|st| st.limits = limits)
    }

    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }
}

/// A clonable in-memory output sink, for capturing what scripts print.
///
/// ```
/// let out = omega_lisp::OutputBuffer::new();
/// let rt = omega_lisp::Runtime::builder().output(out.clone()).build();
/// rt.eval_sync("(display \"hi\")", "<inline>").unwrap();
/// assert_eq!(out.contents(), "hi");
/// ```
#[derive(Clone, Debug, Default)]
pub struct OutputBuffer(Rc<RefCell<Vec<u8>>>);

impl OutputBuffer {
    /// An empty buffer.
    pub fn new() -> OutputBuffer {
        OutputBuffer::default()
    }

    /// Everything written so far (lossy UTF-8).
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }

    /// Takes and clears the contents.
    pub fn take(&self) -> String {
        let bytes = std::mem::take(&mut *self.0.borrow_mut());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for OutputBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Runtime;
    use crate::prelude::cache_is_set;
    use crate::printer::write_string;

    /// Forms that use the preludes' procedures and macros, with their printed values.
    const USES: &[(&str, &str)] = &[
        ("(map (lambda (x) (* x x)) '(1 2 3))", "(1 4 9)"),
        ("(sort '(3 1 2) <)", "(1 2 3)"),
        (
            "(guard (e ((symbol? e) (list 'caught e))) (raise 'boom))",
            "(caught boom)",
        ),
        ("(let-values (((a b) (values 1 2))) (+ a b))", "3"),
        (
            "(begin (define p (make-parameter 1)) (parameterize ((p 2)) (p)))",
            "2",
        ),
        (
            "(begin (define-record-type pt (mk x) pt? (x px)) (px (mk 7)))",
            "7",
        ),
        ("(force (delay (+ 1 2)))", "3"),
        ("((case-lambda ((a) 'one) ((a b) 'two)) 1 2)", "two"),
        ("(string-map char-upcase \"abc\")", "\"ABC\""),
        ("(vector-map + #(1 2) #(10 20))", "#(11 22)"),
    ];

    fn check_uses(rt: &Runtime) {
        for (src, want) in USES {
            let v = rt.eval_sync(src, "<test>").expect(src);
            assert_eq!(write_string(&v), *want, "{src}");
        }
    }

    #[test]
    fn later_runtimes_on_a_thread_run_the_cached_preludes_and_behave_the_same() {
        let first = Runtime::new();
        assert!(
            cache_is_set(),
            "the first runtime on a thread caches the compiled preludes"
        );
        let second = Runtime::new();
        assert_eq!(first.names(), second.names());
        check_uses(&first);
        check_uses(&second);
        // Each runtime has its own globals, macros and prelude closures.
        first
            .eval_sync(
                "(define (map f l) 'mine) (defmacro receive args ''mine)",
                "<test>",
            )
            .expect("redefines");
        assert_eq!(
            write_string(&first.eval_sync("(map car '((1)))", "<test>").expect("runs")),
            "mine"
        );
        check_uses(&second);
        let third = Runtime::new();
        check_uses(&third);
        assert_eq!(
            write_string(
                &third
                    .eval_sync("(receive (a b) (values 1 2) (list a b))", "<test>")
                    .expect("the prelude's receive")
            ),
            "(1 2)"
        );
    }

    #[test]
    fn a_runtime_with_other_globals_before_the_preludes_loads_them_itself() {
        let _ = Runtime::new();
        assert!(cache_is_set());
        // A host global defined before the preludes shifts every slot after it: the cache
        // does not fit, so this runtime reads and compiles the preludes itself.
        let rt = Runtime::builder().build_with(|st| {
            let slot = st.global_slot(crate::Symbol::intern("an-extra-global"));
            st.define_global(slot, crate::Value::Int(42));
        });
        check_uses(&rt);
        assert_eq!(
            write_string(&rt.eval_sync("an-extra-global", "<test>").expect("defined")),
            "42"
        );
        // A plain runtime after it still gets the preludes right (from the cache or not).
        check_uses(&Runtime::new());
    }

    /// Builds `OMEGA_RUNTIMES` runtimes (default 1) on this thread: run under callgrind to
    /// count the instructions of the first (uncached) and of each later (cached) runtime.
    #[test]
    fn build_runtimes_for_measurement() {
        let n: usize = std::env::var("OMEGA_RUNTIMES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        for _ in 0..n {
            let rt = Runtime::builder().output(std::io::sink()).build();
            assert!(rt.global("map").is_some());
        }
    }
}

#[cfg(test)]
mod readme_tests {
    use super::Runtime;

    /// The README of the workspace, whose language section names every form.
    const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));

    /// Every word of every inline code span (`…`) of `text`, parentheses stripped.
    fn code_words(text: &str) -> std::collections::HashSet<String> {
        let mut words = std::collections::HashSet::new();
        for (i, span) in text.split('`').enumerate() {
            if i % 2 == 1 {
                for w in span.split_whitespace() {
                    words.insert(w.trim_matches(|c| c == '(' || c == ')').to_string());
                }
            }
        }
        words
    }

    #[test]
    fn the_readme_names_every_form_a_script_can_use() {
        let words = code_words(README);
        let missing: Vec<String> = Runtime::new()
            .names()
            .into_iter()
            .filter(|n| !words.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "README.md's language section does not name: {}",
            missing.join(" ")
        );
    }
}
