//! Sandbox limits (SPEC §6.7): one struct with defaults.

/// Per-runtime limits. Each, when exceeded, ends the evaluation with an uncatchable `:limit`
/// error naming the limit (`limit exceeded: max_steps (1000)`); `max_depth` raises a catchable
/// `:stack-overflow`. The runtime stays usable afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Steps one evaluation may take; `None` = unlimited. A step is one procedure call (Lisp or
    /// native, tail calls included) — every loop is a tail call, so this bounds all work.
    pub max_steps: Option<u64>,
    /// Deepest Lisp call nesting (non-tail calls); default 100,000.
    pub max_depth: usize,
    /// Longest string a builtin may produce, in bytes; default 16 MiB.
    pub max_string_len: usize,
    /// Longest list a builtin may produce; default 10,000,000.
    pub max_list_len: usize,
    /// A fiber returns [`crate::Step::Yield`] every this many steps; default 1,000.
    pub yield_interval: u32,
    /// Steps all the runtime's tasks may take together (counted per slice of
    /// `yield_interval` steps); `None` (the default) = unlimited. Exceeding it raises
    /// `:limit` in the task that crosses it and in every task that runs after.
    pub max_total_steps: Option<u64>,
    /// Lisp tasks alive at once (spawned with `async`, `with-timeout` or as a script, and not
    /// finished); default 1,000,000, a safety net against runaway spawning; `None` =
    /// unlimited. Spawning past it raises `:limit`.
    pub max_tasks: Option<usize>,
    /// Wall-clock time a script's top level may run (`Runtime::eval_str`, `Engine` scripts); `None` (the
    /// default) = no limit. On expiry the script ends with `:timeout`.
    pub script_timeout: Option<std::time::Duration>,
    /// Bytes the process may have in use, as counted by the meter the host installs
    /// ([`crate::heap::set_meter`]); default 1 GiB; `None` = unlimited. Exceeding it raises
    /// `:limit` ("heap limit of N bytes reached"). Not enforced while no meter is installed.
    /// One script's bytes are bounded by its own limit instead
    /// ([`ScriptLimits::max_heap_bytes`](crate::ScriptLimits::max_heap_bytes)).
    pub max_heap_bytes: Option<usize>,
}

/// The default of [`Limits::max_heap_bytes`]: 1 GiB.
pub const DEFAULT_MAX_HEAP_BYTES: usize = 1 << 30;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_steps: None,
            max_depth: 100_000,
            max_string_len: 16 * 1024 * 1024,
            max_list_len: 10_000_000,
            yield_interval: 1_000,
            max_total_steps: None,
            max_tasks: Some(1_000_000),
            script_timeout: None,
            max_heap_bytes: Some(DEFAULT_MAX_HEAP_BYTES),
        }
    }
}
