//! Per-script budgets ([`ScriptLimits`]): what one script — its top level and every task it
//! spawns — may spend: VM steps, live tasks, LLM calls and LLM tokens. Exceeding one is a
//! `:limit` error naming it (`limit exceeded: script llm_max_calls (3)`), which no `catch`
//! stops.
//!
//! # Implementation details
//!
//! A script's `Budget` is shared (`Rc`) by its tasks: a `LispTask` holds it and makes it the
//! thread's current budget while it is polled ([`enter`]), so the natives that spend
//! (`async`, `llm.infer`, `llm.stream`) find it with [`current`] and a task spawned from the
//! script inherits it. Outside scripts with a budget nothing is counted.
//!
//! # Invariants
//!
//! 1. `tasks` counts the script's live `LispTask`s: added when a task is created, removed
//!    when it is dropped.
//! 2. LLM calls are counted when they start (refused once `llm_max_calls` were started);
//!    tokens when they are answered (a call whose answer goes over `llm_max_tokens` fails
//!    with the `:limit` error, and so does every later call).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::error::{LispError, LispResult};

/// Limits on what one script may spend (see [`ScriptOptions`](crate::ScriptOptions)).
/// `None` means unbounded (the runtime's own [`Limits`](crate::Limits) still apply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptLimits {
    /// VM steps, all of the script's tasks together.
    pub max_steps: Option<u64>,
    /// Tasks alive at once, the top level included.
    pub max_tasks: Option<usize>,
    /// `llm.infer` / `llm.stream` calls started.
    pub llm_max_calls: Option<u64>,
    /// LLM tokens (prompt + completion) as the provider reported them.
    pub llm_max_tokens: Option<u64>,
}

/// A script's spending so far, against its limits.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: ScriptLimits,
    steps: Cell<u64>,
    tasks: Cell<usize>,
    llm_calls: Cell<u64>,
    llm_tokens: Cell<u64>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Budget>>> = const { RefCell::new(None) };
}

/// The budget of the script whose task is being polled on this thread, if any.
pub(crate) fn current() -> Option<Rc<Budget>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes `b` the current budget until the guard is dropped.
pub(crate) fn enter(b: Option<Rc<Budget>>) -> Entered {
    Entered(CURRENT.with(|c| c.replace(b)))
}

/// Restores the previous current budget when dropped.
pub(crate) struct Entered(Option<Rc<Budget>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let prev = self.0.take();
        let _ = CURRENT.try_with(|c| c.replace(prev));
    }
}

impl Budget {
    pub(crate) fn new(limits: ScriptLimits) -> Rc<Budget> {
        Rc::new(Budget {
            limits,
            steps: Cell::new(0),
            tasks: Cell::new(0),
            llm_calls: Cell::new(0),
            llm_tokens: Cell::new(0),
        })
    }

    /// Adds steps taken by one of the script's tasks.
    pub(crate) fn add_steps(&self, n: u64) {
        self.steps.set(self.steps.get().saturating_add(n));
    }

    /// The `:limit` error once the script's steps are spent.
    pub(crate) fn steps_exceeded(&self) -> Option<LispError> {
        let max = self.limits.max_steps?;
        (self.steps.get() > max).then(|| LispError::limit("script max_steps", max))
    }

    /// Counts a new task of the script (invariant 1), or refuses it.
    pub(crate) fn task_started(&self) -> LispResult<()> {
        if let Some(max) = self.limits.max_tasks {
            if self.tasks.get() >= max {
                return Err(LispError::limit("script max_tasks", max));
            }
        }
        self.tasks.set(self.tasks.get() + 1);
        Ok(())
    }

    /// One of the script's tasks was dropped (invariant 1).
    pub(crate) fn task_ended(&self) {
        self.tasks.set(self.tasks.get().saturating_sub(1));
    }

    /// Counts an LLM call about to start, or refuses it (invariant 2).
    pub(crate) fn llm_call(&self) -> LispResult<()> {
        self.tokens_left()?;
        if let Some(max) = self.limits.llm_max_calls {
            if self.llm_calls.get() >= max {
                return Err(LispError::limit("script llm_max_calls", max));
            }
        }
        self.llm_calls.set(self.llm_calls.get() + 1);
        Ok(())
    }

    /// Counts an answer's tokens; the `:limit` error if they went over (invariant 2).
    pub(crate) fn llm_tokens(&self, n: u64) -> LispResult<()> {
        self.llm_tokens.set(self.llm_tokens.get().saturating_add(n));
        self.tokens_left()
    }

    fn tokens_left(&self) -> LispResult<()> {
        match self.limits.llm_max_tokens {
            Some(max) if self.llm_tokens.get() > max => {
                Err(LispError::limit("script llm_max_tokens", max))
            }
            _ => Ok(()),
        }
    }
}
