//! Sandbox limits (SPEC §6.7): one struct with defaults.

/// Per-runtime limits. Each, when exceeded, ends the evaluation with an uncatchable `:limit`
/// error naming the limit (`limit exceeded: max_steps (1000)`); `max_depth` raises a catchable
/// `:stack-overflow`. The runtime stays usable afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Steps one evaluation may take; `None` = unlimited. A step is one procedure call (Lisp or
    /// native, tail calls included) — every loop is a tail call, so this bounds all work; a
    /// builtin that copies or walks a big value (`append`, `assoc` on a map, `sort`, `equal?`)
    /// counts one more step per 16 elements it handles, so its work is bounded too and a loop
    /// of such calls polls interrupts, cancellation and timeouts as often as any loop.
    pub max_steps: Option<u64>,
    /// Deepest Lisp call nesting (non-tail calls); default 100,000.
    pub max_depth: usize,
    /// Longest string a builtin may produce, in bytes; default 16 MiB.
    pub max_string_len: usize,
    /// Longest list a builtin may produce; default 10,000,000.
    pub max_list_len: usize,
    /// A fiber yields to the scheduler every this many steps, so other tasks run; default 1,000.
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
    /// Work the `syntax-rules` expansions of one top-level form may do, in nodes (pattern
    /// nodes matched plus output nodes made); default [`DEFAULT_MAX_EXPANSION_WORK`]
    /// (10,000,000; a 100,000-element ellipsis match takes about 300,000). It holds whatever
    /// `max_steps` says, so an exponential macro ends even where no step limit is set
    /// (`omega check`); exceeding it raises `:limit` (`limit exceeded: max_expansion_work
    /// (N nodes of macro expansion in one top-level form)`).
    pub max_expansion_work: u64,
}

/// The default of [`Limits::max_expansion_work`]: 10,000,000 nodes.
pub const DEFAULT_MAX_EXPANSION_WORK: u64 = 10_000_000;

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
            max_expansion_work: DEFAULT_MAX_EXPANSION_WORK,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{ErrorKind, Limits, Runtime, DEFAULT_MAX_EXPANSION_WORK};

    /// A macro whose expansion doubles with each argument: `(dbl 1 … 12)` makes ~8,000 `dbl`
    /// uses, far more than 1,000 nodes of work but far less than the default limit.
    const DOUBLING: &str =
        "(define-syntax dbl (syntax-rules () ((_) 1) ((_ x . r) (+ (dbl . r) (dbl . r)))))
(dbl 1 2 3 4 5 6 7 8 9 10 11 12)";

    #[test]
    fn max_expansion_work_defaults_to_ten_million_nodes() {
        assert_eq!(Limits::default().max_expansion_work, 10_000_000);
        assert_eq!(DEFAULT_MAX_EXPANSION_WORK, 10_000_000);
        let rt = Runtime::new();
        assert_eq!(
            rt.eval_sync(DOUBLING, "<test>")
                .expect("within the default"),
            crate::Value::Int(4096)
        );
    }

    #[test]
    fn a_lower_max_expansion_work_stops_a_doubling_macro_naming_the_field() {
        let rt = Runtime::builder()
            .limits(Limits {
                max_expansion_work: 1_000,
                ..Limits::default()
            })
            .build();
        let e = rt
            .eval_sync(DOUBLING, "<test>")
            .expect_err("over the limit");
        assert_eq!(e.kind(), &ErrorKind::Limit);
        assert!(
            e.to_string().contains(
                "limit exceeded: max_expansion_work (1000 nodes of macro expansion in one \
                 top-level form)"
            ),
            "{e}"
        );
        // The runtime stays usable, and the macro is defined.
        assert_eq!(
            rt.eval_sync("(dbl 1 2)", "<test>")
                .expect("small uses still expand"),
            crate::Value::Int(4)
        );
    }
}

/// A runtime whose scripts may take `max_steps` steps, the other limits the defaults (the
/// step tests' one set-up).
#[cfg(test)]
pub(crate) fn step_limited(max_steps: u64) -> crate::Runtime {
    crate::Runtime::builder()
        .limits(Limits {
            max_steps: Some(max_steps),
            ..Limits::default()
        })
        .build()
}

#[cfg(test)]
mod finally_tests {
    use crate::ErrorKind;

    fn limited() -> crate::Runtime {
        super::step_limited(10_000)
    }

    #[test]
    fn finally_blocks_run_after_max_steps_and_get_one_more_slice() {
        let rt = limited();
        let e = rt
            .eval_sync(
                "(define ran '()) (define (f) (f))
                 (try (f) (catch e 'caught) (finally (set! ran (list 'finally (+ 1 2)))))",
                "<test>",
            )
            .expect_err("max_steps is uncatchable");
        assert_eq!(e.kind(), &ErrorKind::Limit);
        assert_eq!(
            crate::write_string(&rt.eval_sync("ran", "<test>").expect("defined")),
            "(finally 3)"
        );
        // A finally block that loops meets the limit again.
        let e = rt
            .eval_sync("(define (g) (g)) (try (f) (finally (g)))", "<test>")
            .expect_err("the limit again");
        assert!(
            e.message().contains("limit exceeded: max_steps (10000)"),
            "{e}"
        );
        assert_eq!(
            rt.eval_sync("(+ 1 2)", "<test>").expect("usable"),
            crate::Value::Int(3)
        );
    }
}
