//! The async surface's natives (SPEC §6.4): `async`, `await`, `await-all`, `await-any`,
//! `await-all-settled`, `cancel`, `cancel-all`, `task-state`, `task-id`, `task-name`,
//! `current-task`, `cancelled?`, `check-cancelled`, `sleep`, `yield`, `stats`; the lock natives
//! are in `locks.rs` beside this file, `llm.infer`/`llm.stream` in `crate::llm`, and the macros
//! `with-timeout`, `with-lock`, `with-locks` in `async_prelude.lisp`.
//!
//! Unlike the other builtins these close over the runtime's [`AsyncCtx`] (its scheduler and
//! task table), so they are installed when a runtime is built ([`install`]), each declared with
//! its arity like every builtin. A native that waits returns a [`Suspension`] carrying the
//! future its task polls (`task.rs`); every task goes through [`spawn`].

use std::rc::{Rc, Weak};
use std::time::Duration;

use omega_sched::combinators::WithToken;
use omega_sched::{NoTasks, TaskOptions};

use super::{def_host, def_suspending, opt_int, opt_str, split_options};
use crate::asyncfns::spawn;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::Suspension;
use crate::state::{AsyncCtx, Shared, State};
use crate::task::{as_task, cancel_error, state_keyword, to_lisp_error, FiberStart, TaskValue};
use crate::value::Value;

/// Macros of the async surface, evaluated when a runtime is built.
pub(crate) const ASYNC_PRELUDE: &str = include_str!("async_prelude.lisp");

fn millis(who: &str, n: i64) -> LispResult<Duration> {
    u64::try_from(n).map(Duration::from_millis).map_err(|_| {
        LispError::type_error(who, "a non-negative number of milliseconds", &Value::Int(n))
    })
}

fn tasks_of(who: &str, list: &Value) -> LispResult<Vec<Rc<TaskValue>>> {
    let items = list
        .list_to_vec()
        .ok_or_else(|| LispError::type_error(who, "a list of tasks", list))?;
    items.iter().map(|v| as_task(who, v).cloned()).collect()
}

/// Each task's Lisp result, paired with its token for the combinators.
fn with_tokens(
    tasks: &[Rc<TaskValue>],
) -> Vec<WithToken<impl std::future::Future<Output = LispResult<Value>>>> {
    tasks
        .iter()
        .map(|t| WithToken::new(t.result(), t.token()))
        .collect()
}

impl From<NoTasks> for LispError {
    fn from(_: NoTasks) -> Self {
        LispError::new(ErrorKind::Error, "await-any needs at least one task")
    }
}

/// Installs the async natives into `rt`.
pub(crate) fn install(st: &mut State, shared: Weak<Shared>, ctx: &Rc<AsyncCtx>) {
    super::locks::install(st, ctx);
    crate::llm::install(st, ctx);
    let c = ctx.clone();
    def_host(st, "async", 1, None, move |args| {
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
        // The child starts with the parent's parameterization (issue 15).
        let thunk = crate::builtins::control::inherit(thunk);
        spawn(&c, FiberStart::Call(shared.clone(), thunk), o, name, false)
    });

    def_suspending(st, "await", 1, Some(1), |args| {
        let t = as_task("await", &args[0])?;
        Ok(Suspension::new(t.result()))
    });
    // What the prelude's macros call (`with-timeout`…), whatever a script rebinds.
    super::alias(st, "%async", "async");
    super::alias(st, "%await", "await");

    def_suspending(st, "await-all", 1, Some(1), |args| {
        let tasks = tasks_of("await-all", &args[0])?;
        Ok(Suspension::new(async move {
            let values =
                omega_sched::combinators::all_or_cancel(with_tokens(&tasks), "sibling failed")
                    .await?;
            Ok(Value::list(values))
        }))
    });

    def_suspending(st, "await-any", 1, Some(1), |args| {
        let tasks = tasks_of("await-any", &args[0])?;
        Ok(Suspension::new(async move {
            let (_, v) = omega_sched::combinators::first_ok_or_cancel(
                with_tokens(&tasks),
                "another task won",
            )
            .await?;
            Ok(v)
        }))
    });

    def_suspending(st, "await-all-settled", 1, Some(1), |args| {
        let tasks = tasks_of("await-all-settled", &args[0])?;
        Ok(Suspension::new(async move {
            let mut out = Vec::with_capacity(tasks.len());
            for t in &tasks {
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

    def_host(st, "cancel", 1, Some(2), |args| {
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
    def_host(st, "cancel-all", 0, Some(1), move |args| {
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

    def_host(st, "task-state", 1, Some(1), |args| {
        Ok(state_keyword(as_task("task-state", &args[0])?.state()))
    });
    def_host(st, "task-id", 1, Some(1), |args| {
        Ok(as_task("task-id", &args[0])?
            .id()
            .map_or(Value::Nil, |id| Value::string(id.to_string())))
    });
    def_host(st, "task-name", 1, Some(1), |args| {
        Ok(as_task("task-name", &args[0])?
            .name()
            .map_or(Value::Nil, Value::string))
    });
    let c = ctx.clone();
    def_host(st, "current-task", 0, Some(0), move |_args| {
        Ok(crate::task::current_task_value(&c).unwrap_or(Value::Nil))
    });
    def_host(st, "cancelled?", 0, Some(0), |_args| {
        Ok(Value::Bool(omega_sched::check_cancelled().is_err()))
    });
    def_host(
        st,
        "check-cancelled",
        0,
        Some(0),
        |_args| match omega_sched::check_cancelled() {
            Ok(()) => Ok(Value::Nil),
            Err(c) => Err(cancel_error(&c.reason)),
        },
    );

    def_suspending(st, "sleep", 1, Some(1), |args| {
        let ms = args[0]
            .as_int()
            .ok_or_else(|| LispError::type_error("sleep", "milliseconds (an integer)", &args[0]))?;
        let d = millis("sleep", ms)?;
        // No boxed future: the task holds the scheduler's sleep inline (task.rs).
        Ok(Suspension::sleep(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        ))
    });
    def_suspending(st, "yield", 0, Some(0), |_args| {
        Ok(Suspension::new(async {
            omega_sched::yield_now()
                .await
                .map_err(|c| cancel_error(&c.reason))?;
            Ok(Value::Nil)
        }))
    });

    let c = ctx.clone();
    def_host(st, "stats", 0, Some(0), move |_args| {
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
