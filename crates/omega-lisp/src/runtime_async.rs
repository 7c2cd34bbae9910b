//! The async half of the embedding API (SPEC §6.8): running scripts as scheduler tasks,
//! awaiting them, and registering host functions that suspend only their task.
//!
//! Everything here must run on the thread that drives the runtime's scheduler (inside
//! `Scheduler::run_until`/`block_on` or one of its tasks), because Lisp values are `!Send`.
//! `rt.scheduler().block_on(rt.eval_str(src, name))` drives it for you on a new
//! single-threaded tokio runtime; multi-threaded hosts use [`crate::Engine`].

use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use omega_sched::{Scheduler, TaskId, TaskOptions};

use crate::asyncfns;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::Suspension;
use crate::runtime::Runtime;
use crate::state::LlmUsage;
use crate::task::{as_task, FiberStart, TaskValue};
use crate::value::Value;

/// A script running as a task, from [`Runtime::spawn_str`] / [`Runtime::spawn_file`].
#[derive(Clone, Debug)]
pub struct ScriptTask {
    value: Value,
    task: Rc<TaskValue>,
    id: TaskId,
}

impl ScriptTask {
    /// The script's task value, submitted (it has an id).
    fn new(value: Value) -> LispResult<ScriptTask> {
        let task = as_task("script", &value)?.clone();
        let id = task.id().ok_or_else(|| {
            LispError::new(ErrorKind::Error, "the script's task was not submitted")
        })?;
        Ok(ScriptTask { value, task, id })
    }

    fn task(&self) -> &Rc<TaskValue> {
        &self.task
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Cancels the script (and every task it spawned). True if it had not finished.
    pub fn cancel(&self, reason: &str) -> bool {
        self.task().cancel(reason)
    }

    /// The script's value, or its error (with the Lisp stack where it was raised).
    pub fn result(&self) -> impl Future<Output = LispResult<Value>> + 'static {
        self.task().result()
    }

    /// The task as a Lisp value.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

impl Runtime {
    /// The scheduler this runtime's tasks run on.
    pub fn scheduler(&self) -> Scheduler {
        self.shared().async_ctx.sched.clone()
    }

    /// LLM calls and tokens counted by `llm.infer` so far.
    pub fn llm_usage(&self) -> LlmUsage {
        self.shared().async_ctx.usage.get()
    }

    /// The same figures per model (as the provider named it in its answers).
    pub fn llm_usage_by_model(&self) -> std::collections::BTreeMap<String, LlmUsage> {
        self.shared().async_ctx.by_model.borrow().clone()
    }

    /// Reads `src` and submits it as a top-level task: when it finishes, tasks it spawned
    /// and did not await are cancelled ("script finished"). Read errors are returned here.
    /// `opts` gets the runtime's `script_timeout` unless it sets a timeout itself.
    pub fn spawn_str(&self, src: &str, name: &str, opts: TaskOptions) -> LispResult<ScriptTask> {
        let fiber = self.fiber(src, name)?;
        let mut opts = opts;
        if let Some(t) = self.limits().script_timeout {
            opts = opts.timeout(t);
        }
        let value = asyncfns::spawn(
            &self.shared().async_ctx,
            FiberStart::Ready(Box::new(fiber)),
            opts.name(name),
            Some(name.to_string()),
            true,
        )?;
        ScriptTask::new(value)
    }

    /// [`spawn_str`](Self::spawn_str) for a file, named by its path.
    pub fn spawn_file(&self, path: impl AsRef<Path>, opts: TaskOptions) -> LispResult<ScriptTask> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|e| {
            LispError::new(
                ErrorKind::Error,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.spawn_str(&src, &path.display().to_string(), opts)
    }

    /// Runs `src` as a top-level task on the runtime's scheduler and returns the value of its
    /// last form: `await`, `llm.infer`, `sleep` and async host functions work (SPEC §6.8). When
    /// the script ends, tasks it spawned and did not await are cancelled ("script finished")
    /// and waited for until their `finally` blocks have run, so nothing outlives it. The
    /// runtime's `script_timeout` applies. For options (priority, timeout) use
    /// [`spawn_str`](Self::spawn_str) and [`ScriptTask::result`], then [`settle`](Self::settle).
    pub async fn eval_str(&self, src: &str, name: &str) -> LispResult<Value> {
        let task = self.spawn_str(src, name, TaskOptions::new())?;
        let result = task.result().await;
        self.settle().await;
        result
    }

    /// Evaluates `src` as a task for an interactive session: unlike
    /// [`eval_str`](Self::eval_str), tasks it spawns and does not await live on (a later
    /// input can await them) instead of being cancelled when it ends.
    pub async fn eval_interactive(&self, src: &str, name: &str) -> LispResult<Value> {
        let fiber = self.fiber(src, name)?;
        let value = asyncfns::spawn(
            &self.shared().async_ctx,
            FiberStart::Ready(Box::new(fiber)),
            TaskOptions::new().name(name),
            Some(name.to_string()),
            false,
        )?;
        as_task("eval", &value)?.result().await
    }

    /// Waits until every task this runtime spawned has finished.
    pub async fn settle(&self) {
        // Hosted scripts in `live`: one pass awaits every one known now; another pass
        // catches those started meanwhile. Then every Lisp task's body must be gone
        // (`alive` is 0; the last one out wakes us). Linear in the tasks waited for.
        loop {
            let live: Vec<Value> = self
                .shared()
                .async_ctx
                .live
                .borrow()
                .values()
                .cloned()
                .collect();
            if live.is_empty() {
                let ctx = &self.shared().async_ctx;
                if ctx.alive.get() == 0 {
                    return;
                }
                std::future::poll_fn(|cx| {
                    if ctx.alive.get() == 0 {
                        return std::task::Poll::Ready(());
                    }
                    let mut waiters = ctx.settle_waiters.borrow_mut();
                    if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                        waiters.push(cx.waker().clone());
                    }
                    std::task::Poll::Pending
                })
                .await;
                continue;
            }
            let outcomes: Vec<_> = live
                .iter()
                .filter_map(|v| as_task("settle", v).ok().map(TaskValue::outcome))
                .collect();
            futures::future::join_all(outcomes).await;
            self.shared()
                .async_ctx
                .live
                .borrow_mut()
                .retain(|_, x| as_task("settle", x).is_ok_and(|t| !t.is_finished()));
        }
    }

    /// Registers a host function that suspends only its calling task while its future runs
    /// (an HTTP fetch, a database query…). Cancelling the task drops the future.
    pub fn register_async_fn<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(Vec<Value>) -> Fut + 'static,
        Fut: Future<Output = LispResult<Value>> + 'static,
    {
        self.define_suspending(name, 0, None, move |args| Ok(Suspension::new(f(args))));
    }
}
