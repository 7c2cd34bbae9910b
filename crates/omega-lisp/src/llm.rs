//! The Lisp face of the LLM provider (SPEC §5, §6.4): `llm.infer`, and the natives behind
//! `llm.stream` (in `builtins/async_prelude.lisp`).
//!
//! * `(llm.infer prompt [:model m] [:system s] [:temperature t] [:max-tokens n])` suspends
//!   its task until the provider answers and returns the reply.
//! * `(llm.stream prompt on-chunk [options…])` calls `(on-chunk text)` with each piece of
//!   the reply as it arrives and returns the whole reply. It is Lisp over three natives:
//!   `%llm-stream-open` (a [`LlmStreamHandle`]; nothing is sent yet), `%llm-stream-next`
//!   (suspends until the next piece; `nil` at the end) and `%llm-stream-close` (drops the
//!   stream, closing an unfinished connection at once), called in a `finally`.
//!
//! Every call takes a slot of the scheduler's `"llm"` pool through the provider's attempt
//! gate ([`PoolGate`]), so `--max-llm` bounds requests on the wire. Usage is counted under
//! the model asked for, or the provider's configured model ([`AsyncCtx::count`]). Every
//! string an LLM call hands to Lisp is made by [`reply_value`], which holds it (for a
//! streamed piece: the stream's text so far) to the runtime's `max_string_len`.
//!
//! A task cancelled or timed out while its call is still queued for a pool slot gets an
//! error saying so (`timed out (queued 118.2s for an llm slot)`): the call's
//! [`QueueNote`] leaves that note for the task when it is dropped unsent.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use omega_llm::{
    AttemptGate, CallOptions, GateFuture, GatePermit, LlmError, LlmRequest, LlmResponse, LlmStream,
};
use tokio::time::Instant;

use crate::builtins::{def_host, def_suspending, opt_int, opt_str, split_options};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::Suspension;
use crate::state::{AsyncCtx, LlmUsage, State};
use crate::task::cancel_error;
use crate::value::{Foreign, Value};

/// The options `llm.infer` and `llm.stream` take.
const OPTIONS: &[&str] = &["model", "system", "temperature", "max-tokens"];

/// The scheduler's `"llm"` pool as a provider's attempt gate, for one call: it notes when
/// the call first got a slot.
#[derive(Debug)]
struct PoolGate {
    pool: omega_sched::Pool,
    entered: Arc<AtomicBool>,
}

impl AttemptGate for PoolGate {
    fn enter(self: Arc<Self>) -> GateFuture {
        let acquire = self.pool.acquire();
        Box::pin(async move {
            let permit = acquire.await.map_err(|c| LlmError::Cancelled {
                reason: c.reason.to_string(),
            })?;
            self.entered.store(true, Ordering::SeqCst);
            Ok(GatePermit::new(permit))
        })
    }
}

/// Notes, if dropped while its call has not yet had a pool slot, how long the call queued,
/// for the task's cancellation error (see the module docs). Disarmed when the call ends.
struct QueueNote {
    ctx: Rc<AsyncCtx>,
    entered: Arc<AtomicBool>,
    since: Instant,
    armed: bool,
}

impl QueueNote {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for QueueNote {
    fn drop(&mut self) {
        if self.armed && !self.entered.load(Ordering::SeqCst) {
            if let Some(task) = omega_sched::current_task() {
                let waited = self.since.elapsed().as_secs_f64();
                *self.ctx.cancel_note.borrow_mut() =
                    Some((task, format!("queued {waited:.1}s for an llm slot")));
            }
        }
    }
}

/// Call options whose gate is the `"llm"` pool, and the note that goes with them.
fn gated(ctx: &Rc<AsyncCtx>) -> (CallOptions, Arc<AtomicBool>) {
    let entered = Arc::new(AtomicBool::new(false));
    let gate = PoolGate {
        pool: ctx.sched.llm_pool().clone(),
        entered: entered.clone(),
    };
    (CallOptions::new().gate(Arc::new(gate)), entered)
}

fn queue_note(ctx: &Rc<AsyncCtx>, entered: &Arc<AtomicBool>) -> QueueNote {
    QueueNote {
        ctx: ctx.clone(),
        entered: entered.clone(),
        since: Instant::now(),
        armed: true,
    }
}

/// Makes the Lisp string of text an LLM call produced: a reply, a streamed piece, a
/// stream's whole text. `held` bytes (for a piece, the stream's text so far, since the
/// pieces add up to one reply) must fit `max_string_len`, or the call ends with `:limit`.
/// The one place where LLM output enters the heap.
pub(crate) fn reply_value(ctx: &AsyncCtx, text: String, held: usize) -> LispResult<Value> {
    let max = ctx.max_string_len.get();
    if held.max(text.len()) > max {
        return Err(LispError::limit("max_string_len", max));
    }
    Ok(Value::string(text))
}

/// Fails at once if the current task's own open streams hold every `"llm"` slot: a call
/// would wait for a slot forever (the model called from `llm.stream`'s on-chunk under
/// `--max-llm 1`, say).
fn check_not_self_blocked(ctx: &AsyncCtx, who: &str) -> LispResult<()> {
    let Some(task) = omega_sched::current_task() else {
        return Ok(());
    };
    let held = ctx.stream_slots.borrow().get(&task).copied().unwrap_or(0);
    let capacity = ctx.sched.llm_pool().capacity();
    if held > 0 && held >= capacity {
        return Err(LispError::new(
            ErrorKind::Llm,
            format!(
                "{who}: this task's open llm.stream calls hold all {capacity} llm slots \
                 (--max-llm), so it would wait for one forever: call the model once the \
                 stream has ended, or allow more calls at once"
            ),
        ));
    }
    Ok(())
}

/// The request `(who prompt :key value …)` asks for.
fn request(who: &str, args: &[Value]) -> LispResult<LlmRequest> {
    let (pos, opts) = split_options(who, args, 1, OPTIONS)?;
    let prompt = pos[0]
        .as_str()
        .ok_or_else(|| LispError::type_error(who, "a prompt string", &pos[0]))?;
    let mut req = LlmRequest::prompt(prompt);
    req.model = opt_str(who, &opts, "model")?;
    req.system = opt_str(who, &opts, "system")?;
    req.temperature = match opts.get("temperature") {
        None | Some(Value::Nil) => None,
        Some(Value::Int(i)) => Some(*i as f64),
        Some(Value::Float(f)) => Some(*f),
        Some(v) => {
            return Err(LispError::type_error(
                &format!("{who} :temperature"),
                "a number",
                v,
            ))
        }
    };
    req.max_tokens = match opt_int(who, &opts, "max-tokens")? {
        None => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| {
            LispError::type_error(
                &format!("{who} :max-tokens"),
                "a positive integer",
                &Value::Int(n),
            )
        })?),
    };
    Ok(req)
}

/// The model a request's usage is counted under: the one it asks for, else the
/// provider's configured one.
fn model_of(ctx: &AsyncCtx, req: &LlmRequest) -> String {
    req.model
        .clone()
        .unwrap_or_else(|| ctx.llm.default_model().to_string())
}

/// Counts a completed call.
fn completed(ctx: &AsyncCtx, model: &str, r: &LlmResponse) {
    ctx.count(
        model,
        LlmUsage {
            calls: 1,
            prompt_tokens: r.usage.prompt_tokens,
            completion_tokens: r.usage.completion_tokens,
            ..LlmUsage::default()
        },
    );
}

/// A provider's error as a Lisp error, counted (a cancellation is neither).
fn failed(ctx: &AsyncCtx, who: &str, model: &str, e: LlmError) -> LispError {
    if let LlmError::Cancelled { reason } = e {
        return cancel_error(&reason);
    }
    ctx.count(
        model,
        LlmUsage {
            errors: 1,
            ..LlmUsage::default()
        },
    );
    LispError::new(ErrorKind::Llm, format!("{who} failed ({}): {e}", e.kind()))
}

/// A streamed call as a Lisp value (`#<llm-stream>`).
pub(crate) struct LlmStreamHandle {
    /// `None` once closed (or while a `%llm-stream-next` has it).
    stream: RefCell<Option<LlmStream>>,
    model: String,
    entered: Arc<AtomicBool>,
    /// Bytes of text handed out so far.
    len: Cell<usize>,
    /// The whole reply, once the stream has ended.
    text: RefCell<Option<String>>,
    /// Closed, ended or failed: nothing more to read.
    over: Cell<bool>,
    /// The task whose count in `AsyncCtx::stream_slots` this stream's slot is in.
    holder: Cell<Option<omega_sched::TaskId>>,
    ctx: Weak<AsyncCtx>,
}

impl LlmStreamHandle {
    /// Counts the stream's slot under the current task, once it has one.
    fn hold(&self) {
        if self.holder.get().is_none() && self.entered.load(Ordering::SeqCst) {
            if let (Some(task), Some(ctx)) = (omega_sched::current_task(), self.ctx.upgrade()) {
                *ctx.stream_slots.borrow_mut().entry(task).or_default() += 1;
                self.holder.set(Some(task));
            }
        }
    }

    /// The stream is over: nothing more to read, its slot no longer counted.
    fn end(&self) {
        self.over.set(true);
        if let (Some(task), Some(ctx)) = (self.holder.take(), self.ctx.upgrade()) {
            let mut slots = ctx.stream_slots.borrow_mut();
            if let Some(n) = slots.get_mut(&task) {
                *n -= 1;
                if *n == 0 {
                    slots.remove(&task);
                }
            }
        }
    }
}

/// Ends a stream's handle if dropped armed: its stream was dropped with a `%llm-stream-next`
/// that did not finish.
struct EndOnDrop(Option<Value>);

impl EndOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if let Some(v) = self.0.take() {
            if let Ok(h) = handle("%llm-stream-next", std::slice::from_ref(&v)) {
                h.end();
            }
        }
    }
}

impl Drop for LlmStreamHandle {
    fn drop(&mut self) {
        self.end();
    }
}

impl std::fmt::Debug for LlmStreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmStreamHandle")
            .field("model", &self.model)
            .field("len", &self.len.get())
            .finish()
    }
}

impl Foreign for LlmStreamHandle {
    fn type_name(&self) -> &str {
        "llm-stream"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn handle<'a>(who: &str, args: &'a [Value]) -> LispResult<&'a LlmStreamHandle> {
    if let [Value::Foreign(f)] = args {
        if let Some(h) = f.as_any().downcast_ref::<LlmStreamHandle>() {
            return Ok(h);
        }
    }
    Err(LispError::new(
        ErrorKind::Error,
        format!("{who} expects what %llm-stream-open returned"),
    ))
}

/// Installs `llm.infer` and the natives behind `llm.stream`.
pub(crate) fn install(st: &mut State, ctx: &Rc<AsyncCtx>) {
    let c = ctx.clone();
    def_suspending(st, "llm.infer", 1, None, move |args| {
        let req = request("llm.infer", &args)?;
        check_not_self_blocked(&c, "llm.infer")?;
        // The script's LLM budget, if it has one (see `budget.rs`).
        let budget = crate::budget::current();
        if let Some(b) = &budget {
            b.llm_call()?;
        }
        let c = c.clone();
        Ok(Suspension::new(async move {
            // The pool is the provider's attempt gate: held while an attempt is on the
            // wire, given back while a retrying provider backs off. Dropping this future
            // (the task was cancelled or timed out) drops the call and any permit.
            let model = model_of(&c, &req);
            let (options, entered) = gated(&c);
            let note = queue_note(&c, &entered);
            let provider = c.llm.clone();
            let result = provider.complete_with(req, options).await;
            note.disarm();
            match result {
                Ok(r) => {
                    completed(&c, &model, &r);
                    if let Some(b) = &budget {
                        b.llm_tokens(r.usage.prompt_tokens + r.usage.completion_tokens)?;
                    }
                    let len = r.text.len();
                    reply_value(&c, r.text, len)
                }
                Err(e) => Err(failed(&c, "llm.infer", &model, e)),
            }
        }))
    });

    let c = ctx.clone();
    def_host(st, "%llm-stream-open", 1, None, move |args| {
        let req = request("llm.stream", &args)?;
        if let Some(b) = crate::budget::current() {
            b.llm_call()?;
        }
        let model = model_of(&c, &req);
        let (options, entered) = gated(&c);
        let stream = c.llm.clone().stream_with(req, options);
        Ok(Value::foreign(LlmStreamHandle {
            stream: RefCell::new(Some(stream)),
            model,
            entered,
            len: Cell::new(0),
            text: RefCell::new(None),
            over: Cell::new(false),
            holder: Cell::new(None),
            ctx: Rc::downgrade(&c),
        }))
    });

    let c = ctx.clone();
    def_suspending(st, "%llm-stream-next", 1, Some(1), move |args| {
        let h = handle("%llm-stream-next", &args)?;
        if h.holder.get().is_none() {
            check_not_self_blocked(&c, "llm.stream")?;
        }
        let Some(mut stream) = h.stream.borrow_mut().take() else {
            if h.over.get() {
                return Ok(Suspension::new(std::future::ready(Ok(Value::Nil))));
            }
            return Err(LispError::new(
                ErrorKind::Error,
                "llm.stream: another task is reading this stream",
            ));
        };
        let (c, value, entered) = (c.clone(), args[0].clone(), h.entered.clone());
        Ok(Suspension::new(async move {
            let note = queue_note(&c, &entered);
            // Dropped here (the task was cancelled), the stream goes with this future.
            let over = EndOnDrop(Some(value.clone()));
            let next = stream.next().await;
            over.disarm();
            note.disarm();
            let h = handle("%llm-stream-next", std::slice::from_ref(&value))?;
            match next {
                Some(Ok(piece)) => {
                    let len = h.len.get() + piece.len();
                    let value = match reply_value(&c, piece, len) {
                        Ok(v) => v,
                        Err(e) => {
                            // Over the limit: the stream is dropped, closing its connection.
                            h.end();
                            return Err(e);
                        }
                    };
                    h.len.set(len);
                    h.hold();
                    *h.stream.borrow_mut() = Some(stream);
                    Ok(value)
                }
                Some(Err(e)) => {
                    h.end();
                    Err(failed(&c, "llm.stream", &h.model, e))
                }
                None => {
                    h.end();
                    if let Some(r) = stream.response() {
                        completed(&c, &h.model, r);
                        *h.text.borrow_mut() = Some(r.text.clone());
                    }
                    Ok(Value::Nil)
                }
            }
        }))
    });

    let c = ctx.clone();
    def_host(st, "%llm-stream-text", 1, Some(1), move |args| {
        let h = handle("%llm-stream-text", &args)?;
        let text = h.text.borrow().clone();
        match text {
            Some(text) => {
                let len = text.len();
                reply_value(&c, text, len)
            }
            None => Ok(Value::Nil),
        }
    });

    def_host(st, "%llm-stream-close", 1, Some(1), |args| {
        let h = handle("%llm-stream-close", &args)?;
        h.end();
        drop(h.stream.borrow_mut().take());
        Ok(Value::Nil)
    });
}
