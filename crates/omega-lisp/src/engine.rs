//! [`Engine`]: the `Clone + Send + Sync` front door for multi-threaded hosts (SPEC §6.8). It
//! owns a [`Runtime`] and its scheduler on the scheduler's own driver thread; every other
//! thread holds only `Send` handles and plain data ([`Data`], [`ScriptError`]).
//!
//! # Implementation details
//!
//! `EngineBuilder::build` starts the scheduler's driver thread
//! (`SchedulerBuilder::spawn_driver`) and builds the runtime there, in a thread-local table
//! keyed by the engine's id. Every call that needs the runtime (spawning a script,
//! registering a host function) is a closure sent to the driver thread
//! (`DriverHandle::call`/`run`). A script is submitted as one scheduler task whose body runs
//! the script's `LispTask` and converts its result to [`Data`] (or its error to a
//! [`ScriptError`]) on the driver thread, so the task's output is `Send` and a
//! [`ScriptHandle`] is a plain `TaskHandle` underneath.
//!
//! # Invariants
//!
//! 1. Lisp values never leave the driver thread: only [`Data`] and [`ScriptError`] do.
//! 2. The runtime is dropped on the driver thread, when the thread ends (after shutdown);
//!    its drop signals [`Engine::shutdown`]'s waiters.
//! 3. An async host function's future runs on the host's tokio runtime (the one current
//!    when the engine was built, or the one given), so it may use the host's I/O; only the
//!    calling script task waits for it, and cancelling the task aborts it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{FutureExt, Shared};
use omega_llm::LlmProvider;
use omega_sched::{
    CancelMode, DriverHandle, Scheduler, SchedulerBuilder, Stats, TaskError, TaskHandle, TaskId,
    TaskOptions, TaskState,
};

use crate::budget::{Budget, ScriptLimits};
use crate::data::Data;
use crate::limits::Limits;
use crate::runtime::Runtime;
use crate::script_error::ScriptError;
use crate::state::{AsyncCtx, LlmUsage};
use crate::task::{task_error_to_lisp, to_lisp_error, FiberStart, LispTask, Outcome, TaskValue};
use crate::value::Value;

/// The runtime an engine keeps on its driver thread, and the signal its drop sends.
struct Hosted {
    rt: Runtime,
    _done: tokio::sync::oneshot::Sender<()>,
}

thread_local! {
    /// The runtimes of the engines driven by this thread (invariant 2).
    static RUNTIMES: RefCell<HashMap<u64, Hosted>> = RefCell::new(HashMap::new());
}

static NEXT_ENGINE: AtomicU64 = AtomicU64::new(1);

/// Runs `f` with engine `id`'s runtime (on its driver thread).
fn with_runtime<R>(id: u64, f: impl FnOnce(&Runtime) -> R) -> Option<R> {
    let rt = RUNTIMES.with(|m| m.borrow().get(&id).map(|h| h.rt.clone()))?;
    Some(f(&rt))
}

fn gone() -> ScriptError {
    ScriptError::new("error", "the engine has shut down")
}

/// A Lisp engine usable from any thread: `Clone + Send + Sync`.
///
/// All scripts of one engine run on one runtime, one Lisp evaluation at a time (their LLM
/// calls and host futures overlap): they share its globals, so a `define` in one script is
/// seen by the scripts after it. Hosts that need isolation between requests use an engine
/// per tenant.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let engine = omega_lisp::Engine::new().unwrap();
/// engine.register_fn("double", |args| Ok(omega_lisp::Data::Int(args[0].as_int().unwrap_or(0) * 2)))
///     .unwrap();
/// let v = engine.eval("(double (+ 1 2))", "<doc>").await.unwrap();
/// assert_eq!(v, omega_lisp::Data::Int(6));
/// let e = engine.eval("(car 1)", "<doc>").await.unwrap_err();
/// assert_eq!(e.kind(), "type-error");
/// engine.shutdown("done").await;
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    sched: Scheduler,
    driver: DriverHandle,
    done: Shared<tokio::sync::oneshot::Receiver<()>>,
    host: Option<tokio::runtime::Handle>,
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    sched: SchedulerBuilder,
    limits: Limits,
    llm: Option<Arc<dyn LlmProvider>>,
    output: Option<Box<dyn Write + Send>>,
    host: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// The scheduler's settings (default: `Scheduler::builder()`).
    pub fn scheduler(mut self, b: SchedulerBuilder) -> Self {
        self.sched = b;
        self
    }

    /// The runtime's limits (default: [`Limits::default`]); per-script limits go in
    /// [`ScriptOptions`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The provider `llm.infer` calls (default: the echoing mock).
    pub fn llm(mut self, provider: Arc<dyn LlmProvider>) -> Self {
        self.llm = Some(provider);
        self
    }

    /// Where `display`/`print` output goes (default: stdout).
    pub fn output(mut self, out: impl Write + Send + 'static) -> Self {
        self.output = Some(Box::new(out));
        self
    }

    /// The tokio runtime async host functions run on (default: the one current when
    /// [`build`](Self::build) is called; without one they run on the driver thread).
    pub fn host_runtime(mut self, h: tokio::runtime::Handle) -> Self {
        self.host = Some(h);
        self
    }

    /// Starts the driver thread and builds the runtime on it.
    pub fn build(self) -> std::io::Result<Engine> {
        let driver = self.sched.spawn_driver()?;
        let sched = driver.scheduler().clone();
        let id = NEXT_ENGINE.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (limits, llm, output, s) = (self.limits, self.llm, self.output, sched.clone());
        driver
            .run(move || {
                let mut b = Runtime::builder().scheduler(s).limits(limits);
                if let Some(p) = llm {
                    b = b.llm(p);
                }
                if let Some(out) = output {
                    b = b.output(out);
                }
                let rt = b.build();
                RUNTIMES.with(|m| m.borrow_mut().insert(id, Hosted { rt, _done: tx }));
            })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                id,
                sched,
                driver,
                done: rx.shared(),
                host: self
                    .host
                    .or_else(|| tokio::runtime::Handle::try_current().ok()),
            }),
        })
    }
}

impl Engine {
    /// A builder with the defaults.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            sched: Scheduler::builder(),
            limits: Limits::default(),
            llm: None,
            output: None,
            host: None,
        }
    }

    /// An engine with the defaults.
    pub fn new() -> std::io::Result<Engine> {
        Engine::builder().build()
    }

    /// The engine's scheduler (stats, tasks, events, cancel by id).
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.sched
    }

    /// The scheduler's statistics now.
    pub fn stats(&self) -> Stats {
        self.inner.sched.stats()
    }

    /// LLM calls and tokens counted by `llm.infer` so far, all scripts together (the
    /// runtime's figures, fetched from the driver thread).
    pub async fn llm_usage(&self) -> Result<LlmUsage, ScriptError> {
        let id = self.inner.id;
        self.inner
            .driver
            .call(move || with_runtime(id, Runtime::llm_usage))
            .await
            .ok()
            .flatten()
            .ok_or_else(gone)
    }

    /// Runs `src` (named `name` in positions and errors) to the end and returns its value.
    pub async fn eval(&self, src: &str, name: &str) -> Result<Data, ScriptError> {
        self.spawn(src, ScriptOptions::new().name(name))
            .await?
            .await
    }

    /// Starts `src` as a script task. Read errors (and a heap limit asked for without the
    /// counting allocator, see [`ScriptOptions::max_heap_bytes`]) are returned here;
    /// everything else when the handle is awaited. When the script's top level ends, the tasks it spawned and did not
    /// await are cancelled ("script finished").
    pub async fn spawn(&self, src: &str, opts: ScriptOptions) -> Result<ScriptHandle, ScriptError> {
        let id = self.inner.id;
        let src = src.to_string();
        let error = Arc::new(Mutex::new(None));
        let err_out = error.clone();
        let sched = self.inner.sched.clone();
        let handle = self
            .inner
            .driver
            .call(move || {
                with_runtime(id, |rt| start_script(rt, &sched, &src, opts, err_out))
                    .unwrap_or_else(|| Err(gone()))
            })
            .await
            .map_err(|_| gone())??;
        Ok(ScriptHandle {
            handle,
            error,
            sched: self.inner.sched.clone(),
        })
    }

    /// [`spawn`](Self::spawn) for a file, named by its path.
    pub async fn spawn_file(
        &self,
        path: &Path,
        opts: ScriptOptions,
    ) -> Result<ScriptHandle, ScriptError> {
        let src = std::fs::read_to_string(path).map_err(|e| {
            ScriptError::new("error", format!("cannot read {}: {e}", path.display()))
        })?;
        let name = path.display().to_string();
        let opts = match opts.name {
            Some(_) => opts,
            None => opts.name(&name),
        };
        self.spawn(&src, opts).await
    }

    /// Registers a host function as global `name`: it gets the arguments as [`Data`] and
    /// returns data, or a [`ScriptError`] raised in the script (with its kind). Runs on the
    /// driver thread: keep it short (use [`register_async_fn`](Self::register_async_fn) for
    /// I/O). Blocks until the driver thread has registered it.
    pub fn register_fn<F>(&self, name: &str, f: F) -> Result<(), ScriptError>
    where
        F: Fn(Vec<Data>) -> Result<Data, ScriptError> + Send + Sync + 'static,
    {
        self.not_from_a_script()?;
        let (id, name) = (self.inner.id, name.to_string());
        self.inner
            .driver
            .run(move || {
                with_runtime(id, |rt| {
                    rt.register_fn(&name, move |args| {
                        let args = args.iter().map(Data::from_value).collect();
                        f(args).map(|d| d.to_value()).map_err(|e| e.to_lisp())
                    });
                })
            })
            .ok()
            .flatten()
            .ok_or_else(gone)
    }

    /// Registers an async host function as global `name`: its future runs on the host's
    /// tokio runtime (invariant 3) while only the calling script task waits; cancelling the
    /// task aborts it. Blocks until the driver thread has registered it.
    pub fn register_async_fn<F, Fut>(&self, name: &str, f: F) -> Result<(), ScriptError>
    where
        F: Fn(Vec<Data>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Data, ScriptError>> + Send + 'static,
    {
        self.not_from_a_script()?;
        let (id, name, host) = (self.inner.id, name.to_string(), self.inner.host.clone());
        self.inner
            .driver
            .run(move || {
                with_runtime(id, |rt| {
                    rt.register_async_fn(&name, move |args| {
                        let fut = f(args.iter().map(Data::from_value).collect());
                        let host = host.clone();
                        async move {
                            let r = match host {
                                Some(h) => AbortOnDrop(h.spawn(fut)).await.unwrap_or_else(|e| {
                                    Err(ScriptError::new(
                                        "panic",
                                        format!("host function failed: {e}"),
                                    ))
                                }),
                                None => fut.await,
                            };
                            r.map(|d| d.to_value()).map_err(|e| e.to_lisp())
                        }
                    });
                })
            })
            .ok()
            .flatten()
            .ok_or_else(gone)
    }

    /// Registering from the driver thread (a host function called by a script) would
    /// re-enter the runtime while it runs the script.
    fn not_from_a_script(&self) -> Result<(), ScriptError> {
        if self.inner.sched.is_driven_here() {
            return Err(ScriptError::new(
                "error",
                "host functions cannot be registered from inside a script's host function",
            ));
        }
        Ok(())
    }

    /// Shuts down: every script is cancelled (`reason`), shielded cleanups get the
    /// scheduler's `cleanup_grace`, every lock and permit is released, later spawns fail.
    /// Resolves once the driver thread has dropped the runtime.
    pub async fn shutdown(&self, reason: &str) {
        self.inner.sched.shutdown(reason);
        let _ = self.inner.done.clone().await;
    }
}

/// Starts a script on the driver thread: a task whose body runs the script and hands back
/// owned data (invariant 1).
fn start_script(
    rt: &Runtime,
    sched: &Scheduler,
    src: &str,
    opts: ScriptOptions,
    error_out: Arc<Mutex<Option<ScriptError>>>,
) -> Result<TaskHandle<Data>, ScriptError> {
    if opts.limits.max_heap_bytes.is_some() && !crate::heap::counts_per_thread() {
        return Err(ScriptError::new(
            "error",
            "ScriptOptions::max_heap_bytes needs omega_lisp::heap::CountingAlloc as the \
             #[global_allocator] (it counts bytes per thread); this process does not use it",
        ));
    }
    let name = opts.name.unwrap_or_else(|| "<script>".to_string());
    let fiber = rt.fiber(src, &name).map_err(|e| ScriptError::from(&e))?;
    let mut task_opts = TaskOptions::new()
        .name(name.as_str())
        .priority(opts.priority)
        .cancel_mode(CancelMode::Cooperative);
    if let Some(t) = opts.timeout.or(rt.limits().script_timeout) {
        task_opts = task_opts.timeout(t);
    }
    let budget = Budget::new(opts.limits);
    budget.task_started().map_err(|e| ScriptError::from(&e))?;
    let value = TaskValue::unborn(Some(name));
    let ctx = rt.shared().async_ctx.clone();
    let task = LispTask::new(
        FiberStart::Ready(Box::new(fiber)),
        value.clone(),
        true,
        ctx.clone(),
        Some(budget),
    );
    // The script's own task value, for `(current-task)`: its outcome arrives through `tx`
    // (or, if the body is dropped unfinished, as a cancellation). Without the script's value:
    // a value that holds the task itself would make a cycle through `done` (and the tasks
    // that could await it — the script's children — are cancelled when it ends).
    let (tx, rx) = futures::channel::oneshot::channel::<Outcome>();
    let live = LiveEntry(Rc::downgrade(&ctx), Rc::new(std::cell::Cell::new(None)));
    let live_id = live.1.clone();
    let body_task = value.clone();
    let body = async move {
        let _live = live;
        let r = task.await;
        let _ = tx.send(r.as_ref().map(|_| Value::Nil).map_err(Clone::clone));
        match r {
            Ok(v) => Ok(Data::from_value(&v)),
            Err(e) => {
                let err = ScriptError::from(&to_lisp_error(&body_task.slot, &e));
                if let Ok(mut out) = error_out.lock() {
                    *out = Some(err.clone());
                }
                Err(match e {
                    TaskError::Failed(_) => TaskError::failed(err),
                    other => other,
                })
            }
        }
    };
    let handle = sched.submit_local_result(body, task_opts);
    let done = async move {
        rx.await.unwrap_or_else(|_| {
            Err(TaskError::Cancelled {
                reason: "the script was dropped".into(),
            })
        })
    }
    .boxed_local()
    .shared();
    value.hosted(handle.id(), handle.token().clone(), sched.clone(), done);
    live_id.set(Some(handle.id()));
    ctx.live
        .borrow_mut()
        .insert(handle.id(), Value::Task(value));
    Ok(handle)
}

/// Keeps a script's task value in the runtime's `live` table (for `(current-task)`) until
/// its body ends or is dropped.
struct LiveEntry(Weak<AsyncCtx>, Rc<std::cell::Cell<Option<TaskId>>>);

impl Drop for LiveEntry {
    fn drop(&mut self) {
        if let (Some(ctx), Some(id)) = (self.0.upgrade(), self.1.get()) {
            ctx.live.borrow_mut().remove(&id);
        }
    }
}

/// Aborts a spawned host future when the script stops waiting for it (invariant 3).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a script runs: name, priority, timeout and per-script limits (steps, tasks, heap
/// bytes, LLM calls and tokens: [`ScriptLimits`]).
#[derive(Clone, Debug, Default)]
pub struct ScriptOptions {
    name: Option<String>,
    priority: i32,
    timeout: Option<Duration>,
    limits: ScriptLimits,
}

impl ScriptOptions {
    /// The defaults: named `<script>`, priority 0, the runtime's `script_timeout`, no
    /// per-script limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// The script's name (in positions, errors and the scheduler's task list).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// The task's priority (higher runs first).
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = p;
        self
    }

    /// Ends the script with `:timeout` after `d` (counted from admission).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// All per-script limits at once.
    pub fn limits(mut self, limits: ScriptLimits) -> Self {
        self.limits = limits;
        self
    }

    /// VM steps of all the script's tasks together.
    pub fn max_steps(mut self, n: u64) -> Self {
        self.limits.max_steps = Some(n);
        self
    }

    /// Tasks of the script alive at once (its top level included).
    pub fn max_tasks(mut self, n: usize) -> Self {
        self.limits.max_tasks = Some(n);
        self
    }

    /// Bytes the script — its top level and every task it spawns — may hold (net: allocated
    /// minus freed while its tasks run; see [`ScriptLimits::max_heap_bytes`]). Past it the
    /// script ends with `:limit` ("limit exceeded: script max_heap_bytes (N)"), its `finally`
    /// blocks run, and the engine's other scripts go on. Needs
    /// [`heap::CountingAlloc`](crate::heap::CountingAlloc) as the global allocator:
    /// [`Engine::spawn`] refuses the script without it.
    pub fn max_heap_bytes(mut self, n: usize) -> Self {
        self.limits.max_heap_bytes = Some(n);
        self
    }

    /// LLM calls the script may start.
    pub fn llm_max_calls(mut self, n: u64) -> Self {
        self.limits.llm_max_calls = Some(n);
        self
    }

    /// LLM tokens (prompt + completion) the script may use.
    pub fn llm_max_tokens(mut self, n: u64) -> Self {
        self.limits.llm_max_tokens = Some(n);
        self
    }
}

/// A running script: `Send`, awaitable (its value as [`Data`], or its [`ScriptError`]),
/// cancellable from any thread. Dropping the handle does not stop the script (cancel it, or
/// let [`Engine::shutdown`] do it).
#[derive(Debug)]
#[must_use = "a script handle does nothing unless awaited or cancelled"]
pub struct ScriptHandle {
    handle: TaskHandle<Data>,
    error: Arc<Mutex<Option<ScriptError>>>,
    sched: Scheduler,
}

/// Cancels one script from anywhere: `Clone + Send + Sync`, so a host can keep it (in a
/// request table, another thread, a timer) while it awaits the [`ScriptHandle`] itself.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let engine = omega_lisp::Engine::new().unwrap();
/// let h = engine
///     .spawn("(let loop () (try (sleep 10) (catch e 0)) (loop))", Default::default())
///     .await
///     .unwrap();
/// let stop = h.canceller();
/// std::thread::spawn(move || stop.cancel("operator")).join().unwrap();
/// assert_eq!(h.await.unwrap_err().kind(), "cancelled");
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ScriptCanceller {
    sched: Scheduler,
    id: TaskId,
}

impl ScriptCanceller {
    /// Cancels the script, as [`ScriptHandle::cancel`] does. True if this call cancelled it.
    pub fn cancel(&self, reason: &str) -> bool {
        self.sched.cancel(self.id, reason)
    }
}

impl ScriptHandle {
    /// The script's task id.
    pub fn id(&self) -> TaskId {
        self.handle.id()
    }

    /// The script's state (`None` once it left the scheduler's bounded history).
    pub fn state(&self) -> Option<TaskState> {
        self.handle.state()
    }

    /// Cancels the script and every task it spawned: `:cancelled` is raised at its next
    /// checkpoint (within one VM slice), its `finally` blocks run. True if this call
    /// cancelled it.
    pub fn cancel(&self, reason: &str) -> bool {
        self.handle.cancel(reason)
    }

    /// A [`ScriptCanceller`] for this script, to cancel it from elsewhere while this handle
    /// is being awaited.
    pub fn canceller(&self) -> ScriptCanceller {
        ScriptCanceller {
            sched: self.sched.clone(),
            id: self.id(),
        }
    }

    fn stashed(&self) -> Option<ScriptError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

impl Future for ScriptHandle {
    type Output = Result<Data, ScriptError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = match Pin::new(&mut self.handle).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        Poll::Ready(r.map_err(|e| {
            match e {
                // The scheduler's verdict for a timeout; the script's own error otherwise.
                TaskError::Failed(_) | TaskError::Cancelled { .. } => self
                    .stashed()
                    .unwrap_or_else(|| ScriptError::from(&task_error_to_lisp(&e))),
                other => ScriptError::from(&task_error_to_lisp(&other)),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync + 'static>() {}
        fn send<T: Send + 'static>() {}
        send_sync::<Engine>();
        send::<ScriptHandle>();
        send_sync::<ScriptCanceller>();
        send_sync::<ScriptOptions>();
    }

    /// This test binary keeps the system allocator: a per-script heap limit could not hold,
    /// so the engine refuses the script, naming the allocator it needs, and runs the others.
    #[test]
    fn a_heap_limit_without_the_counting_allocator_is_refused_at_spawn() {
        assert!(!crate::heap::counts_per_thread());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let engine = Engine::new().expect("engine");
            let e = engine
                .spawn("(+ 1 2)", ScriptOptions::new().max_heap_bytes(1 << 20))
                .await
                .expect_err("refused");
            assert_eq!(e.kind(), "error");
            assert_eq!(
                e.message(),
                "ScriptOptions::max_heap_bytes needs omega_lisp::heap::CountingAlloc as the \
                 #[global_allocator] (it counts bytes per thread); this process does not use it"
            );
            let v = engine
                .spawn("(+ 1 2)", ScriptOptions::new().max_steps(1000))
                .await
                .expect("spawned")
                .await
                .expect("ran");
            assert_eq!(v, Data::Int(3));
            engine.shutdown("done").await;
        });
    }
}
