//! The one way a Lisp task is born.
//!
//! Every task a runtime spawns goes through [`spawn`]: it is submitted to the runtime's
//! scheduler as a `!Send`, cooperative task running a [`LispTask`], and Lisp gets a
//! [`TaskValue`]. The natives of the async surface are in `builtins/async_surface.rs`.

use std::rc::Rc;

use omega_sched::{CancelMode, TaskOptions};

use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::AsyncCtx;
use crate::task::{FiberStart, LispTask, TaskValue};
use crate::value::Value;

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
            "tasks need a running scheduler: evaluate with Runtime::eval_str(..).await (or `omega run`), not eval_sync",
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
    // The value is made first: the body keeps it alive until it ends (see `LispTask::task`).
    let value = TaskValue::unborn(name);
    let task = LispTask::new(start, value.clone(), top_level, ctx.clone(), budget).value_in_slot();
    // The bytes of the scheduler's record are measured, to be credited back exactly when
    // the value goes (budget.rs, "The scheduler's record").
    let (handle, record) = crate::budget::record_bytes(|| {
        ctx.sched
            .submit_local_result(task, opts.cancel_mode(CancelMode::Cooperative))
    });
    // Untracked: each awaiter records its own await edge (`TaskValue::outcome`).
    value.spawned(handle.untracked(), record);
    Ok(Value::Task(value))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::{write_string, Runtime, Value};
    use omega_sched::Scheduler;

    #[tokio::test(start_paused = true)]
    async fn finished_tasks_nobody_awaits_are_freed_and_running_ones_are_kept() {
        let sched = Scheduler::new();
        let rt = Runtime::builder().scheduler(sched.clone()).build();
        let ctx = rt.shared().async_ctx.clone();
        type Watched = Rc<RefCell<Vec<std::rc::Weak<crate::task::TaskValue>>>>;
        let watched: Watched = Rc::default();
        let w = watched.clone();
        rt.register_fn("watch", move |args| {
            if let Value::Task(rc) = &args[0] {
                w.borrow_mut().push(Rc::downgrade(rc));
            }
            Ok(Value::Nil)
        });
        let w = watched.clone();
        rt.register_fn("watched-alive", move |_| {
            Ok(Value::Int(
                w.borrow().iter().filter(|w| w.strong_count() > 0).count() as i64,
            ))
        });
        rt.register_fn("tasks-alive", move |_| {
            Ok(Value::Int(ctx.alive.get() as i64))
        });
        // 5,000 tasks spawned and dropped unawaited, each watched through a weak reference:
        // while they sleep their bodies keep their values; once they end, nothing does.
        // Only the still-running `slow` and the script itself are alive then.
        let v = sched
            .run_until(rt.eval_str(
                "(define ran 0)
                 (define (spawn-n n)
                   (if (> n 0)
                       (begin (watch (async (lambda () (sleep 5) (set! ran (+ ran 1)) n)))
                              (spawn-n (- n 1)))
                       :done))
                 (spawn-n 5000)
                 (define slow (async (lambda () (sleep 1000) :slow)))
                 (sleep 1)
                 (define during (watched-alive))
                 (sleep 10)
                 (list during (watched-alive) ran (tasks-alive) (await slow))",
                "unawaited.lisp",
            ))
            .await
            .expect("runs");
        assert_eq!(write_string(&v), "(5000 0 5000 2 :slow)");
        assert_eq!(rt.shared().async_ctx.alive.get(), 0, "settled");
    }
}
