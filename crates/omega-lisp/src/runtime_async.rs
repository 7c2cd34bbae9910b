//! The async half of the embedding API (SPEC §6.8): running scripts as scheduler tasks,
//! awaiting them, and registering host functions that suspend only their task.
//!
//! Everything here must run on the thread that drives the runtime's scheduler (inside
//! `Scheduler::run_until`/`block_on` or one of its tasks), because Lisp values are `!Send`.
//! [`Runtime::run_blocking`] does the driving for you.

use std::future::Future;
use std::path::Path;

use omega_sched::{Scheduler, TaskId, TaskOptions};

use crate::asyncfns::{self, LlmUsage};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::Suspension;
use crate::runtime::Runtime;
use crate::task::{as_task, AsyncRequest, FiberStart, TaskValue};
use crate::value::Value;

/// A script running as a task, from [`Runtime::spawn_str`] / [`Runtime::spawn_file`].
#[derive(Clone, Debug)]
pub struct ScriptTask {
    value: Value,
}

impl ScriptTask {
    fn task(&self) -> &TaskValue {
        as_task("script", &self.value).expect("a ScriptTask always holds a task value")
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.task().id()
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
        Ok(ScriptTask { value })
    }

    /// [`spawn_str`](Self::spawn_str) for a file, named by its path.
    pub fn spawn_file(&self, path: &Path, opts: TaskOptions) -> LispResult<ScriptTask> {
        let src = std::fs::read_to_string(path).map_err(|e| {
            LispError::new(
                ErrorKind::Error,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.spawn_str(&src, &path.display().to_string(), opts)
    }

    /// Evaluates `src` as a task and returns its value — the async counterpart of
    /// [`eval_str`](Self::eval_str), in which `llm.infer`, `await` and friends work.
    pub async fn eval(&self, src: &str, name: &str) -> LispResult<Value> {
        self.run_script(src, name, TaskOptions::new()).await
    }

    /// Runs a script to the end: spawns it, awaits its value, then waits until every task
    /// it left behind (cancelled with "script finished") has run its `finally` blocks, so
    /// nothing outlives the script.
    pub async fn run_script(&self, src: &str, name: &str, opts: TaskOptions) -> LispResult<Value> {
        let task = self.spawn_str(src, name, opts)?;
        let result = task.result().await;
        self.settle().await;
        result
    }

    /// Evaluates `src` as a task for an interactive session: unlike
    /// [`run_script`](Self::run_script), tasks it spawns and does not await live on (a later
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
        // One pass awaits every task known now (tasks remove themselves from `live` when
        // their outcome is collected); another pass catches tasks spawned meanwhile. Each
        // pass is linear in the tasks it waits for.
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
                return;
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

    /// Drives the scheduler on this thread (a new single-threaded tokio runtime) and runs
    /// `src` with [`run_script`](Self::run_script).
    ///
    /// ```
    /// let rt = omega_lisp::Runtime::new();
    /// let v = rt.run_blocking(
    ///     "(await-all (list (async (lambda () (llm.infer \"a\"))) (async (lambda () 2))))",
    ///     "<doc>",
    /// );
    /// assert_eq!(omega_lisp::write_string(&v.unwrap()), "(\"echo: a\" 2)");
    /// ```
    ///
    /// # Panics
    /// As `Scheduler::block_on`: inside another tokio runtime, or when the scheduler is
    /// already driven elsewhere.
    pub fn run_blocking(&self, src: &str, name: &str) -> LispResult<Value> {
        let sched = self.scheduler();
        sched.block_on(self.run_script(src, name, TaskOptions::new()))
    }

    /// Registers a host function that suspends only its calling task while its future runs
    /// (an HTTP fetch, a database query…). Cancelling the task drops the future.
    pub fn register_async_fn<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(Vec<Value>) -> Fut + 'static,
        Fut: Future<Output = LispResult<Value>> + 'static,
    {
        self.register_suspending_fn(name, move |args| {
            let request: AsyncRequest = Box::pin(f(args));
            Ok(Suspension::new(request))
        });
    }
}
