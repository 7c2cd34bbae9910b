//! The async surface (SPEC §6.4): `async`, `await`, `await-all`, `await-any`,
//! `await-all-settled`, `cancel`, `cancel-all`, `task-state`, `task-id`, `task-name`,
//! `current-task`, `cancelled?`, `check-cancelled`, `sleep`, `yield`, `stats` (`llm.infer`
//! and `llm.stream` are in `llm.rs`), and the macros `with-timeout`, `with-lock`,
//! `with-locks` (in [`ASYNC_PRELUDE`]).
//!
//! Every task a runtime spawns goes through [`spawn`]: it is submitted to the runtime's
//! scheduler as a `!Send`, cooperative task running a [`LispTask`], and Lisp gets a
//! [`TaskValue`]. Natives that wait return an [`AsyncRequest`] (a boxed future) as their
//! suspension; the calling task polls it (see `task.rs`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use omega_llm::LlmProvider;
use omega_sched::combinators::WithToken;
use omega_sched::{CancelMode, NoTasks, Scheduler, TaskId, TaskOptions};

use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::Suspension;
use crate::runtime::{Runtime, Shared};
use crate::task::{
    as_task, cancel_error, state_keyword, to_lisp_error, AsyncRequest, FiberStart, LispTask,
    TaskSlot, TaskValue,
};
use crate::value::Value;

/// Macros of the async surface, evaluated when a runtime is built.
pub(crate) const ASYNC_PRELUDE: &str = include_str!("builtins/async_prelude.lisp");

/// LLM usage counted by `llm.infer`, shown by `(stats)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LlmUsage {
    /// Calls that returned text.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Prompt tokens, as the provider reported them.
    pub prompt_tokens: u64,
    /// Completion tokens, as the provider reported them.
    pub completion_tokens: u64,
}

/// The runtime's link to its scheduler and LLM provider.
pub(crate) struct AsyncCtx {
    pub sched: Scheduler,
    pub llm: Arc<dyn LlmProvider>,
    /// Task values of tasks not known to be finished, by id (for `current-task` and for
    /// waiting out a script's stragglers).
    pub live: RefCell<HashMap<TaskId, Value>>,
    /// Lisp tasks alive now (a `LispTask` counts itself in and, when dropped, out).
    pub alive: Cell<usize>,
    pub max_tasks: Cell<Option<usize>>,
    /// Steps taken by all tasks so far, and the limit on them (`Limits::max_total_steps`).
    pub total_steps: Cell<u64>,
    pub max_total_steps: Cell<Option<u64>>,
    pub usage: Cell<LlmUsage>,
    pub by_model: RefCell<BTreeMap<String, LlmUsage>>,
    /// `Limits::max_string_len`, which LLM replies are held to (see `llm.rs`).
    pub max_string_len: Cell<usize>,
    /// What a task's dropped request was waiting for, for its cancellation error: left by
    /// an LLM call dropped while queued (`llm.rs`), taken by the task (`task.rs`).
    pub cancel_note: RefCell<Option<(TaskId, String)>>,
    /// `"llm"` pool slots held by each task's open streams (`llm.rs`).
    pub stream_slots: RefCell<HashMap<TaskId, usize>>,
}

impl AsyncCtx {
    /// Adds one call's figures to the totals and to its model's.
    pub(crate) fn count(&self, model: &str, add: LlmUsage) {
        let sum = |a: LlmUsage, b: LlmUsage| LlmUsage {
            calls: a.calls + b.calls,
            errors: a.errors + b.errors,
            prompt_tokens: a.prompt_tokens + b.prompt_tokens,
            completion_tokens: a.completion_tokens + b.completion_tokens,
        };
        self.usage.set(sum(self.usage.get(), add));
        let mut by_model = self.by_model.borrow_mut();
        let entry = by_model.entry(model.to_string()).or_default();
        *entry = sum(*entry, add);
    }

    /// The note the current task's dropped request left, if any (`queued 118.2s for an
    /// llm slot`).
    pub(crate) fn take_cancel_note(&self) -> Option<String> {
        let note = self.cancel_note.borrow_mut().take();
        match note {
            Some((task, note)) if Some(task) == omega_sched::current_task() => Some(note),
            _ => None,
        }
    }

    pub fn new(sched: Scheduler, llm: Arc<dyn LlmProvider>, limits: &crate::Limits) -> Self {
        AsyncCtx {
            sched,
            llm,
            live: RefCell::new(HashMap::new()),
            alive: Cell::new(0),
            max_tasks: Cell::new(limits.max_tasks),
            total_steps: Cell::new(0),
            max_total_steps: Cell::new(limits.max_total_steps),
            usage: Cell::new(LlmUsage::default()),
            by_model: RefCell::new(BTreeMap::new()),
            max_string_len: Cell::new(limits.max_string_len),
            cancel_note: RefCell::new(None),
            stream_slots: RefCell::new(HashMap::new()),
        }
    }
}

/// Submits a Lisp evaluation as a task and returns its task value.
pub(crate) fn spawn(
    ctx: &Rc<AsyncCtx>,
    start: FiberStart,
    opts: TaskOptions,
    name: Option<String>,
    top_level: bool,
) -> LispResult<Value> {
    if !ctx.sched.is_driven_here() {
        return Err(LispError::new(
            ErrorKind::Error,
            "tasks need a running scheduler: evaluate with Runtime::eval/run_script (or `omega run`), not eval_str",
        ));
    }
    if let Some(max) = ctx.max_tasks.get() {
        if ctx.alive.get() >= max {
            return Err(LispError::limit("max_tasks", max));
        }
    }
    // A task spawned from a script with a budget counts against it.
    let budget = crate::budget::current();
    if let Some(b) = &budget {
        b.task_started()?;
    }
    let slot = Rc::new(TaskSlot::default());
    let task = LispTask::new(start, slot.clone(), top_level, ctx.clone(), budget).value_in_slot();
    let handle = ctx
        .sched
        .submit_local_result(task, opts.cancel_mode(CancelMode::Cooperative));
    let id = handle.id();
    // Untracked: each awaiter records its own await edge (`TaskValue::outcome`).
    let value = TaskValue::spawned(handle.untracked(), name, slot);
    ctx.live.borrow_mut().insert(id, value.clone());
    Ok(value)
}

pub(crate) fn suspend(
    f: impl std::future::Future<Output = LispResult<Value>> + 'static,
) -> Suspension {
    let request: AsyncRequest = Box::pin(f);
    Suspension::new(request)
}

/// `(f positional… :key value …)`: the positional arguments and the options.
pub(crate) fn split_options<'a>(
    who: &str,
    args: &'a [Value],
    positional: usize,
    allowed: &[&str],
) -> LispResult<(&'a [Value], HashMap<String, Value>)> {
    if args.len() < positional {
        return Err(LispError::arity(
            who,
            &format!("at least {positional}"),
            args.len(),
        ));
    }
    let (pos, rest) = args.split_at(positional);
    if rest.len() % 2 != 0 {
        return Err(LispError::new(
            ErrorKind::ArityError,
            format!("{who}: options come in :key value pairs"),
        ));
    }
    let mut opts = HashMap::new();
    for pair in rest.chunks(2) {
        let Value::Keyword(k) = &pair[0] else {
            return Err(LispError::type_error(who, "an option keyword", &pair[0]));
        };
        let name = k.name();
        if !allowed.contains(&&*name) {
            return Err(LispError::new(
                ErrorKind::Error,
                format!(
                    "{who}: unknown option :{name} (expected one of {})",
                    allowed
                        .iter()
                        .map(|a| format!(":{a}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ));
        }
        opts.insert(name.to_string(), pair[1].clone());
    }
    Ok((pos, opts))
}

pub(crate) fn opt_int(
    who: &str,
    opts: &HashMap<String, Value>,
    key: &str,
) -> LispResult<Option<i64>> {
    match opts.get(key) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v
            .as_int()
            .map(Some)
            .ok_or_else(|| LispError::type_error(&format!("{who} :{key}"), "an integer", v)),
    }
}

pub(crate) fn opt_str(
    who: &str,
    opts: &HashMap<String, Value>,
    key: &str,
) -> LispResult<Option<String>> {
    match opts.get(key) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| LispError::type_error(&format!("{who} :{key}"), "a string", v)),
    }
}

fn millis(who: &str, n: i64) -> LispResult<Duration> {
    u64::try_from(n).map(Duration::from_millis).map_err(|_| {
        LispError::type_error(who, "a non-negative number of milliseconds", &Value::Int(n))
    })
}

fn exactly(who: &str, args: &[Value], n: usize) -> LispResult<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(LispError::arity(who, &n.to_string(), args.len()))
    }
}

fn tasks_of(who: &str, list: &Value) -> LispResult<Vec<Rc<Box<dyn crate::value::Foreign>>>> {
    let items = list
        .list_to_vec()
        .ok_or_else(|| LispError::type_error(who, "a list of tasks", list))?;
    items
        .iter()
        .map(|v| {
            as_task(who, v)?;
            match v {
                Value::Foreign(f) => Ok(f.clone()),
                _ => unreachable!("as_task accepted it"),
            }
        })
        .collect()
}

fn task_ref(f: &Rc<Box<dyn crate::value::Foreign>>) -> &TaskValue {
    f.as_any()
        .downcast_ref::<TaskValue>()
        .expect("tasks_of only returns task values")
}

/// Each task's Lisp result, paired with its token for the combinators.
fn with_tokens(
    tasks: &[Rc<Box<dyn crate::value::Foreign>>],
) -> Vec<WithToken<impl std::future::Future<Output = LispResult<Value>>>> {
    tasks
        .iter()
        .map(|f| WithToken::new(task_ref(f).result(), task_ref(f).token()))
        .collect()
}

impl From<NoTasks> for LispError {
    fn from(_: NoTasks) -> Self {
        LispError::new(ErrorKind::Error, "await-any needs at least one task")
    }
}

/// What `(sleep ms)` ends with: `nil`, or the task's cancellation as the Lisp error.
///
/// `sleep` suspends on `omega_sched::sleep(d).map(sleep_outcome)` rather than an `async`
/// block, which would keep the duration beside the sleep in every sleeping task (SPEC §9,
/// memory per task).
fn sleep_outcome(r: Result<(), omega_sched::Cancelled>) -> LispResult<Value> {
    match r {
        Ok(()) => Ok(Value::Nil),
        Err(c) => Err(cancel_error(&c.reason)),
    }
}

/// Installs the async natives into `rt`.
pub(crate) fn install(rt: &Runtime, shared: Weak<Shared>, ctx: &Rc<AsyncCtx>) {
    crate::locks::install(rt, ctx);
    crate::llm::install(rt, ctx);
    let c = ctx.clone();
    rt.register_fn("async", move |args| {
        let (pos, opts) = split_options("async", &args, 1, &["name", "priority", "timeout"])?;
        let thunk = pos[0].clone();
        if !thunk.is_procedure() {
            return Err(LispError::type_error("async", "a procedure", &thunk));
        }
        let name = opt_str("async", &opts, "name")?;
        let mut o = TaskOptions::new();
        if let Some(n) = &name {
            o = o.name(n.as_str());
        }
        if let Some(p) = opt_int("async", &opts, "priority")? {
            let p = i32::try_from(p).map_err(|_| {
                LispError::type_error("async :priority", "a 32-bit integer", &Value::Int(p))
            })?;
            o = o.priority(p);
        }
        if let Some(ms) = opt_int("async", &opts, "timeout")? {
            o = o.timeout(millis("async :timeout", ms)?);
        }
        spawn(&c, FiberStart::Call(shared.clone(), thunk), o, name, false)
    });

    rt.register_suspending_fn("await", |args| {
        exactly("await", &args, 1)?;
        let t = as_task("await", &args[0])?;
        Ok(suspend(t.result()))
    });

    rt.register_suspending_fn("await-all", |args| {
        exactly("await-all", &args, 1)?;
        let tasks = tasks_of("await-all", &args[0])?;
        Ok(suspend(async move {
            let values =
                omega_sched::combinators::all_or_cancel(with_tokens(&tasks), "sibling failed")
                    .await?;
            Ok(Value::list(values))
        }))
    });

    rt.register_suspending_fn("await-any", |args| {
        exactly("await-any", &args, 1)?;
        let tasks = tasks_of("await-any", &args[0])?;
        Ok(suspend(async move {
            let (_, v) = omega_sched::combinators::first_ok_or_cancel(
                with_tokens(&tasks),
                "another task won",
            )
            .await?;
            Ok(v)
        }))
    });

    rt.register_suspending_fn("await-all-settled", |args| {
        exactly("await-all-settled", &args, 1)?;
        let tasks = tasks_of("await-all-settled", &args[0])?;
        Ok(suspend(async move {
            let mut out = Vec::with_capacity(tasks.len());
            for f in &tasks {
                let t = task_ref(f);
                let entry = match t.outcome().await {
                    Ok(v) => vec![
                        (Value::keyword("status"), Value::keyword("ok")),
                        (Value::keyword("value"), v),
                    ],
                    Err(e) => vec![
                        (Value::keyword("status"), Value::keyword("error")),
                        (
                            Value::keyword("error"),
                            Value::error(to_lisp_error(&t.slot, &e)),
                        ),
                    ],
                };
                out.push(Value::map(entry));
            }
            Ok(Value::list(out))
        }))
    });

    rt.register_fn("cancel", |args| {
        if args.is_empty() || args.len() > 2 {
            return Err(LispError::arity("cancel", "1 or 2", args.len()));
        }
        let t = as_task("cancel", &args[0])?;
        let reason = match args.get(1) {
            None => "cancelled".to_string(),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| LispError::type_error("cancel", "a reason string", v))?,
        };
        Ok(Value::Bool(t.cancel(&reason)))
    });

    let c = ctx.clone();
    rt.register_fn("cancel-all", move |args| {
        if args.len() > 1 {
            return Err(LispError::arity("cancel-all", "0 or 1", args.len()));
        }
        let reason = match args.first() {
            None => "cancelled",
            Some(v) => v
                .as_str()
                .ok_or_else(|| LispError::type_error("cancel-all", "a reason string", v))?,
        };
        // Every task but the caller: cancelling itself is what `(cancel (current-task))` is for.
        let me = omega_sched::current_task();
        let mut n = 0;
        for info in c.sched.tasks() {
            if !info.state.is_finished() && Some(info.id) != me && c.sched.cancel(info.id, reason) {
                n += 1;
            }
        }
        Ok(Value::Int(n))
    });

    rt.register_fn("task-state", |args| {
        exactly("task-state", &args, 1)?;
        Ok(state_keyword(as_task("task-state", &args[0])?.state()))
    });
    rt.register_fn("task-id", |args| {
        exactly("task-id", &args, 1)?;
        Ok(Value::string(
            as_task("task-id", &args[0])?.id().to_string(),
        ))
    });
    rt.register_fn("task-name", |args| {
        exactly("task-name", &args, 1)?;
        Ok(as_task("task-name", &args[0])?
            .name()
            .map_or(Value::Nil, Value::string))
    });
    let c = ctx.clone();
    rt.register_fn("current-task", move |args| {
        exactly("current-task", &args, 0)?;
        Ok(omega_sched::current_task()
            .and_then(|id| c.live.borrow().get(&id).cloned())
            .unwrap_or(Value::Nil))
    });
    rt.register_fn("cancelled?", |args| {
        exactly("cancelled?", &args, 0)?;
        Ok(Value::Bool(omega_sched::check_cancelled().is_err()))
    });
    rt.register_fn("check-cancelled", |args| {
        exactly("check-cancelled", &args, 0)?;
        match omega_sched::check_cancelled() {
            Ok(()) => Ok(Value::Nil),
            Err(c) => Err(cancel_error(&c.reason)),
        }
    });

    rt.register_suspending_fn("sleep", |args| {
        exactly("sleep", &args, 1)?;
        let ms = args[0]
            .as_int()
            .ok_or_else(|| LispError::type_error("sleep", "milliseconds (an integer)", &args[0]))?;
        let d = millis("sleep", ms)?;
        let request: AsyncRequest = Box::pin(futures::FutureExt::map(
            omega_sched::sleep(d),
            sleep_outcome,
        ));
        Ok(Suspension::new(request))
    });
    rt.register_suspending_fn("yield", |args| {
        exactly("yield", &args, 0)?;
        Ok(suspend(async {
            omega_sched::yield_now()
                .await
                .map_err(|c| cancel_error(&c.reason))?;
            Ok(Value::Nil)
        }))
    });

    let c = ctx.clone();
    rt.register_fn("stats", move |args| {
        exactly("stats", &args, 0)?;
        let s = c.sched.stats();
        let u = c.usage.get();
        let n = |x: u64| Value::Int(i64::try_from(x).unwrap_or(i64::MAX));
        Ok(Value::map([
            (Value::keyword("pending"), n(s.pending as u64)),
            (Value::keyword("running"), n(s.running as u64)),
            (Value::keyword("suspended"), n(s.suspended as u64)),
            (Value::keyword("completed"), n(s.completed)),
            (Value::keyword("cancelled"), n(s.cancelled)),
            (Value::keyword("failed"), n(s.failed)),
            (Value::keyword("timed-out"), n(s.timed_out)),
            (Value::keyword("submitted"), n(s.submitted)),
            (Value::keyword("llm-in-flight"), n(s.llm_in_flight as u64)),
            (Value::keyword("llm-calls"), n(u.calls)),
            (Value::keyword("llm-errors"), n(u.errors)),
            (Value::keyword("prompt-tokens"), n(u.prompt_tokens)),
            (Value::keyword("completion-tokens"), n(u.completion_tokens)),
            (
                Value::keyword("llm-models"),
                Value::map(c.by_model.borrow().iter().map(|(m, u)| {
                    (
                        Value::string(m.as_str()),
                        Value::map([
                            (Value::keyword("calls"), n(u.calls)),
                            (Value::keyword("errors"), n(u.errors)),
                            (Value::keyword("prompt-tokens"), n(u.prompt_tokens)),
                            (Value::keyword("completion-tokens"), n(u.completion_tokens)),
                        ]),
                    )
                })),
            ),
        ]))
    });
}

#[cfg(test)]
mod tests {
    use crate::{write_string, Runtime, Value};
    use omega_sched::Scheduler;

    #[tokio::test(start_paused = true)]
    async fn finished_tasks_nobody_awaits_leave_the_live_table() {
        let sched = Scheduler::new();
        let rt = Runtime::builder().scheduler(sched.clone()).build();
        let ctx = rt.shared().async_ctx.clone();
        rt.register_fn("live-count", move |_| {
            Ok(Value::Int(ctx.live.borrow().len() as i64))
        });
        // 5,000 tasks spawned and dropped unawaited; after a wait long enough for them to
        // end, only the still-running `slow` (and the script's own task) are live.
        let v = sched
            .run_until(rt.eval(
                "(define (spawn-n n) (if (> n 0) (begin (async (lambda () n)) (spawn-n (- n 1))) :done))
                 (spawn-n 5000)
                 (define slow (async (lambda () (sleep 1000) :slow)))
                 (sleep 10)
                 (list (live-count) (await slow))",
                "unawaited.lisp",
            ))
            .await
            .expect("runs");
        let text = write_string(&v);
        let live: i64 = text[1..text.find(' ').expect("two items")]
            .parse()
            .expect("a count");
        assert!(live <= 2, "finished tasks were retained: {text}");
        assert!(text.ends_with(":slow)"), "{text}");
    }
}
