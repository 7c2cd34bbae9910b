//! The Omega Lisp (SPEC §6): a reader ([`read_all`]) turns text into positioned [`Syntax`], the
//! expander and compiler turn each top-level form into compact bytecode, and a heap-allocated VM
//! runs it in slices with proper tail calls, `try`/`catch`/`finally`, sandbox [`Limits`], a
//! per-step hook (step counting, host [`Interrupt`]s, yielding every `yield_interval` steps) and
//! natives that suspend only their task (`await`, `llm.infer`, async host functions) — each
//! script and each `async` body is a task of the `omega_sched` scheduler. [`Engine`] is the
//! `Send + Sync` front door for multi-threaded hosts (results as [`Data`], errors as
//! [`ScriptError`]); [`Runtime`] is the single-threaded core (its entry points are listed in
//! its docs: `eval_str(..).await`, `spawn_str`/`spawn_file`, `eval_sync`, `call`); errors are
//! one rich [`LispError`] printed as in SPEC §6.5; [`Value`] converts to and from Rust and JSON.
//!
//! # The heap
//!
//! Values are reference counted. What reference counting cannot free — values reachable only
//! through cycles, which always pass through a captured, assigned variable (a cell) or a
//! foreign object that holds values — is reclaimed by the [`collector`]: a synchronous
//! trial-deletion pass at the VM's safe points, run when the registry of such objects has grown
//! by a factor since the last pass (amortised O(1) per allocation). There is no root set: any
//! strong reference the collector does not see (a VM stack, a global, a suspended task, a value
//! the host holds) keeps what it reaches alive, so **a host keeps a [`Value`] simply by holding
//! it**; a [`Foreign`] type that holds values must implement `holds_values`/`trace`/
//! `clear_values` for cycles through it to be reclaimed. Dropping any value never recurses on
//! the native stack. The [`heap`] limit (`Limits::max_heap_bytes`) is checked against a meter the
//! host installs ([`heap::set_meter`], e.g. a counting global allocator, as the `omega` CLI
//! does).

mod asyncfns;
mod budget;
mod builtins;
mod bytecode;
pub mod collector;
mod compiler;
mod convert;
mod data;
mod engine;
mod error;
mod expander;
mod fiber;
pub mod heap;
mod ir;
mod json;
mod limits;
mod llm;
mod native;
mod prelude;
mod printer;
mod reader;
mod runtime;
mod runtime_async;
mod script_error;
mod stack;
mod stack_guard;
mod state;
mod symbol;
mod syntax_rules;
mod task;
mod value;
mod vm;
mod work;

pub use budget::ScriptLimits;
pub use convert::{from_json, to_json};
pub use data::Data;
pub use engine::{Engine, EngineBuilder, ScriptCanceller, ScriptHandle, ScriptOptions};
pub use error::{ErrorData, ErrorKind, LispError, LispResult, Span, StackFrame};
pub use limits::{Limits, DEFAULT_MAX_EXPANSION_WORK, DEFAULT_MAX_HEAP_BYTES};
pub use native::Native;
pub use printer::{display_string, format_float, write_string};
pub use reader::{
    decode_source, read_all, read_one, set_thread_max_string_len, Syntax, SyntaxKind, MAX_NESTING,
};
pub use runtime::{OutputBuffer, Runtime, RuntimeBuilder};
pub use runtime_async::ScriptTask;
pub use script_error::{Frame, Position, ScriptError};
pub use state::LlmUsage;
pub use symbol::Symbol;
pub use value::{
    circular_list_error, eq, equal, eqv, list_length, set_car, set_cdr, Closure, CycleCheck,
    Foreign, LispMap, LispVector, ListIter, ListShape, MapKey, Pair, TaskValue, Value,
};
pub use vm::{
    clear_interrupt_request, interrupt_request_flag, request_interrupt, Interrupt, InterruptFn,
};

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
