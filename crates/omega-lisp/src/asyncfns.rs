//! The one way a Lisp task is born.
//!
//! Every task a runtime spawns goes through [`spawn`]: it is submitted to the runtime's
//! scheduler as a `!Send`, cooperative task running a [`LispTask`], and Lisp gets a
//! [`TaskValue`]. The natives of the async surface are in `builtins/async_surface.rs`.

use std::rc::Rc;

use futures::future::FutureExt;
use omega_sched::{CancelMode, TaskOptions};

use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::AsyncCtx;
use crate::task::{FiberStart, LispTask, TaskSlot, TaskValue};
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
    let slot = Rc::new(TaskSlot::default());
    let task = LispTask::new(start, slot.clone(), top_level, ctx.clone(), budget);
    let handle = ctx
        .sched
        .submit_local_result(task, opts.cancel_mode(CancelMode::Cooperative));
    let id = handle.id();
    slot.id.set(Some(id));
    let token = handle.token().clone();
    let weak = Rc::downgrade(ctx);
    // Untracked: each awaiter records its own await edge (`TaskValue::outcome`).
    let handle = handle.untracked();
    let done = async move {
        let r = handle.await;
        if let Some(ctx) = weak.upgrade() {
            ctx.live.borrow_mut().remove(&id);
        }
        r
    }
    .boxed_local()
    .shared();
    let value = Value::foreign(TaskValue {
        id,
        name,
        token,
        sched: ctx.sched.clone(),
        done,
        slot,
    });
    ctx.live.borrow_mut().insert(id, value.clone());
    Ok(value)
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
            .run_until(rt.eval_str(
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
