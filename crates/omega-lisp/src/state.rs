//! A runtime's shared state, in one home: [`Shared`] is what every fiber, task and runtime-bound
//! native of a runtime holds (an `Rc`), and it has two parts:
//!
//! * [`State`], the interpreter state: globals, macros, the builtin table, output sink, limits
//!   and the random generator — borrowed mutably by one VM slice at a time;
//! * [`AsyncCtx`], the runtime's link to its scheduler and LLM provider: the task table and the
//!   counters the async surface shares (LLM usage, limits on tasks and total steps) — interior
//!   mutability, never borrowed across an `.await`.
//!
//! # Invariants
//!
//! 1. Global slots `0..PrimOp::ALL.len()` hold the inlined primitives, in `PrimOp` order, so a
//!    `Prim` op knows its fallback slot without a lookup.
//! 2. `prim_intact[i]` is true until the program (re)defines or `set!`s global slot `i`; bit `i`
//!    of `prims_redefined` is set at the same moment (the same set, read all at once).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;

use omega_llm::LlmProvider;
use omega_sched::{Scheduler, TaskId};

use crate::bytecode::PrimOp;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::limits::Limits;
use crate::symbol::{FxHashMap, Symbol};
use crate::value::Value;

/// What a runtime's fibers, tasks and natives share (see the module doc).
pub(crate) struct Shared {
    pub(crate) state: RefCell<State>,
    /// The scheduler and LLM provider the async surface uses.
    pub(crate) async_ctx: Rc<AsyncCtx>,
}

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
    /// Task values of hosted scripts (the `Engine`'s wrappers) not known to be finished,
    /// by id, for waiting out a script's stragglers. A task spawned by `async` is not here:
    /// its body keeps its own task value alive ([`LispTask`](crate::task::LispTask)) and
    /// `settle` waits for `alive` to reach 0 (SPEC §9: a table entry per task was ~64
    /// bytes of each suspended task).
    pub live: RefCell<HashMap<TaskId, Value>>,
    /// Lisp tasks alive now (a `LispTask` counts itself in and, when dropped, out; the
    /// last one out wakes `settle_waiters`).
    pub alive: Cell<usize>,
    /// `Runtime::settle` calls waiting for `alive` to reach 0.
    pub settle_waiters: RefCell<Vec<std::task::Waker>>,
    /// The value of the Lisp task being polled now, for `current-task` (set by
    /// `LispTask::poll` for the length of the poll).
    pub current: RefCell<Option<Rc<crate::task::TaskValue>>>,
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
            settle_waiters: RefCell::new(Vec::new()),
            current: RefCell::new(None),
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

pub(crate) const PRIM_COUNT: usize = PrimOp::ALL.len();
// `State::prims_redefined` has a bit for each primitive.
const _: () = assert!(PRIM_COUNT <= 64);

/// Room for the globals a new runtime defines (the builtins and the preludes' names, about
/// 350) without rehashing its tables as it installs them.
const INITIAL_GLOBALS: usize = 512;

/// All mutable interpreter state that is not a fiber's own.
pub(crate) struct State {
    pub(crate) globals: Vec<Option<Value>>,
    pub(crate) global_names: Vec<Symbol>,
    global_index: HashMap<Symbol, u32>,
    pub(crate) macros: HashMap<Symbol, Value>,
    pub(crate) prim_intact: [bool; PRIM_COUNT],
    /// The primitives redefined, as [`PrimOp::bit`]s: the set `prim_intact` is `false` for
    /// (invariant 2), for fast paths that need several primitives at once (`vm/edge.rs`).
    pub(crate) prims_redefined: u64,
    /// Builtins by name, unaffected by user redefinition (used by the expander). Hashed with
    /// FxHash: its keys are the runtime's own static names, never a script's.
    pub(crate) builtins: FxHashMap<&'static str, Value>,
    pub(crate) output: Box<dyn Write>,
    pub(crate) limits: Limits,
    pub(crate) rng: u64,
    /// The interrupt hook and step count a fiber lends to the synchronous calls that macro
    /// expansion makes (`VmCore::lend_budget`), so expansion runs under the same `max_steps`
    /// and interrupts as evaluation; `lent_steps` is `None` when nothing is lent.
    pub(crate) lent_interrupt: Option<crate::vm::Hook>,
    /// See `lent_interrupt`.
    pub(crate) lent_steps: Option<u64>,
    /// The preludes' procedures not loaded yet (`prelude.rs`).
    pub(crate) lazy: crate::prelude::Lazy,
}

impl State {
    pub(crate) fn new(limits: Limits, output: Box<dyn Write>, seed: u64) -> State {
        let mut st = State {
            globals: Vec::with_capacity(INITIAL_GLOBALS),
            global_names: Vec::with_capacity(INITIAL_GLOBALS),
            global_index: HashMap::with_capacity(INITIAL_GLOBALS),
            macros: HashMap::new(),
            prim_intact: [true; PRIM_COUNT],
            prims_redefined: 0,
            builtins: FxHashMap::with_capacity_and_hasher(INITIAL_GLOBALS, Default::default()),
            output,
            limits,
            rng: seed | 1,
            lent_interrupt: None,
            lent_steps: None,
            lazy: crate::prelude::Lazy::default(),
        };
        // Invariant 1.
        for (_, name, _) in PrimOp::ALL {
            st.global_slot(Symbol::intern(name));
        }
        st
    }

    /// The global slot for `name`, creating an undefined one.
    pub(crate) fn global_slot(&mut self, name: Symbol) -> u32 {
        if let Some(&i) = self.global_index.get(&name) {
            return i;
        }
        let i = u32::try_from(self.globals.len()).expect("fewer than 2^32 globals");
        self.globals.push(None);
        self.global_names.push(name);
        self.global_index.insert(name, i);
        i
    }

    /// Defines (or redefines) a global.
    pub(crate) fn define_global(&mut self, slot: u32, v: Value) {
        let i = slot as usize;
        if i < PRIM_COUNT {
            // Invariant 2.
            self.prim_intact[i] = false;
            self.prims_redefined |= 1 << i;
        }
        self.lazy.forget(slot);
        self.globals[i] = Some(v);
    }

    /// An `:unbound` error for global slot.
    pub(crate) fn unbound(&self, slot: u32) -> LispError {
        LispError::new(
            ErrorKind::Unbound,
            format!(
                "unbound variable: {}",
                crate::printer::write_string_limited(
                    &Value::Symbol(self.global_names[slot as usize]),
                    80
                )
            ),
        )
    }

    /// Fails with a `:limit` error if a string of `len` bytes is too long.
    pub(crate) fn check_str_len(&self, len: usize) -> LispResult<()> {
        if len > self.limits.max_string_len {
            return Err(LispError::limit(
                "max_string_len",
                self.limits.max_string_len,
            ));
        }
        self.check_heap()
    }

    /// Fails with a `:limit` error if a list of `len` elements is too long.
    pub(crate) fn check_list_len(&self, len: usize) -> LispResult<()> {
        if len > self.limits.max_list_len {
            return Err(LispError::limit("max_list_len", self.limits.max_list_len));
        }
        self.check_heap()
    }

    /// Fails with a `:limit` error if the heap limit is exceeded (`heap.rs`).
    #[inline]
    pub(crate) fn check_heap(&self) -> LispResult<()> {
        crate::heap::check(self.limits.max_heap_bytes)
    }

    /// A string value, checked against `max_string_len`; building it is charged as work
    /// (`work.rs`), one element per 8 bytes.
    pub(crate) fn make_string(&self, s: String) -> LispResult<Value> {
        self.check_str_len(s.len())?;
        crate::work::charge(s.len() / 8);
        Ok(Value::string(s))
    }

    /// A list value, checked against `max_list_len`.
    pub(crate) fn make_list(&self, items: Vec<Value>) -> LispResult<Value> {
        self.check_list_len(items.len())?;
        Ok(Value::list(items))
    }

    /// Next pseudo-random u64 (xorshift64*; seeded per runtime so tests are deterministic).
    pub(crate) fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
