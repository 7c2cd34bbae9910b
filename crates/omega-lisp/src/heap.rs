//! The heap limits: how many bytes the runtime may have in use (SPEC §6.7 `max_heap_bytes`,
//! process-wide), and how many one script may hold (`ScriptOptions::max_heap_bytes`, per
//! script, counted per thread; see `budget.rs`).
//!
//! # Design
//!
//! Bytes in use are counted by a *meter*: a function the host installs once per process with
//! [`set_meter`], normally reading a counting global allocator (the `omega` CLI installs
//! [`CountingAlloc`] and `|| ALLOC.allocated()`). Counting in the allocator charges every
//! allocation path at once — the reader, literals, builtins, `append`, string building, JSON,
//! LLM replies, macro expansion — and credits every free, so the figure is live bytes, not
//! bytes ever allocated. Without a meter the runtime limit is not enforced (an embedder that
//! wants it installs one).
//!
//! [`CountingAlloc`] is `cap::Cap` (the process-wide count of bytes in use) over jemalloc
//! (`tikv-jemallocator`), which also keeps, for each thread, the bytes it ever allocated and
//! ever freed. Those per-thread counters (read through `tikv-jemalloc-ctl`, a pointer read)
//! are what the per-script limit is charged from: the counters are read when a script's task
//! starts a slice on a thread and when the slice ends, and the net difference is the
//! script's (see `budget.rs` for what that does and does not attribute exactly).
//! [`counts_per_thread`] tells whether `CountingAlloc` is the process's global allocator; an
//! `Engine` refuses a script with a heap limit when it is not (the limit could not hold).
//!
//! # Installing the meter (two lines)
//!
//! A host — one using a `Runtime` or an `Engine` — installs [`CountingAlloc`] as its global
//! allocator and its count as the meter:
//!
//! ```
//! #[global_allocator]
//! static ALLOC: omega_lisp::heap::CountingAlloc = omega_lisp::heap::counting_alloc();
//!
//! omega_lisp::heap::set_meter(|| ALLOC.allocated());
//! // From here on `max_heap_bytes` holds for every runtime of the process:
//! let rt = omega_lisp::Runtime::new();
//! rt.set_limits(omega_lisp::Limits {
//!     max_heap_bytes: Some(64 << 20),
//!     ..omega_lisp::Limits::default()
//! })
//! .unwrap();
//! let e = rt
//!     .eval_sync("(define (grow xs) (grow (cons (make-string 1000 #\\a) xs))) (grow '())", "<doc>")
//!     .unwrap_err();
//! assert_eq!(e.message(), "heap limit of 67108864 bytes reached");
//! // ... and so do per-script heap limits of an `Engine` (`ScriptOptions::max_heap_bytes`):
//! assert!(omega_lisp::heap::counts_per_thread());
//! ```
//!
//! Per-runtime accounting without a global allocator (charging each Lisp object to its
//! runtime) was not chosen: it would miss what builtins, the reader, JSON and LLM replies
//! allocate outside Lisp objects, which is what the limit is for. The meter is process-wide
//! (invariant 1): with several runtimes in one process, each one's limit is compared with
//! the bytes in use by all of them.
//!
//! The limits are compared with the counts at *check points*: the VM's safe points (every
//! `yield_interval` steps at most), every builtin that builds a string or a list
//! (`State::make_string`/`make_list` and the length checks), each macro expansion, the reader
//! (every few thousand datums) and the printers. Exceeding the runtime's limit raises the
//! uncatchable `:limit` error "heap limit of N bytes reached"; exceeding a script's raises
//! "limit exceeded: script max_heap_bytes (N)". The evaluation unwinds, freeing what it held,
//! and the runtime stays usable.
//!
//! # Invariants
//!
//! 1. The meter is process-wide; the limit in force on a thread is the one of the runtime that
//!    last ran or was built on it ([`set_thread_limit`]), which is what the reader — called
//!    without a runtime — checks against. A runtime checks its own [`crate::Limits`] directly.
//! 2. Every check point checks the per-script limit of the script being polled on the thread
//!    too (`budget::check_heap`), after charging it what the thread allocated since its slice
//!    began.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

use tikv_jemalloc_ctl::thread::{allocatedp, deallocatedp, ThreadLocal};

pub use crate::budget::script_heap_held;
use crate::error::{ErrorKind, LispError, LispResult};

/// A meter: the bytes in use now.
type Meter = fn() -> usize;

static METER: RwLock<Option<Meter>> = RwLock::new(None);
/// Bumped by every [`set_meter`]: a thread's copy of the meter (`METER_CACHE`) is current while
/// its generation is this one. A check reads the meter through the copy with one plain load,
/// not the two atomic read-modify-writes of taking the lock (`append` in a loop checks the
/// heap on every call: the lock was ~3 % of `nqueens`).
static METER_GENERATION: AtomicU64 = AtomicU64::new(0);

/// A counting global allocator: jemalloc, with the process's bytes in use counted
/// (`allocated()`) and each thread's bytes allocated and freed counted by jemalloc, for a
/// host to install so that `max_heap_bytes` — the runtime's and each script's — is enforced
/// (see the module docs). Its own limit stays off (`usize::MAX`): the runtime's `:limit`
/// error, not an allocation failure, is what stops a script.
pub type CountingAlloc = cap::Cap<tikv_jemallocator::Jemalloc>;

/// A [`CountingAlloc`] for a `#[global_allocator]` static.
pub const fn counting_alloc() -> CountingAlloc {
    cap::Cap::new(tikv_jemallocator::Jemalloc, usize::MAX)
}

thread_local! {
    /// This thread's jemalloc counters (bytes ever allocated, bytes ever freed), once read.
    static THREAD_COUNTERS: Option<(ThreadLocal<u64>, ThreadLocal<u64>)> =
        allocatedp::read().ok().zip(deallocatedp::read().ok());
}

/// This thread's (bytes ever allocated, bytes ever freed) according to jemalloc; `None` if
/// they cannot be read (the thread is ending).
fn jemalloc_thread_counters() -> Option<(u64, u64)> {
    THREAD_COUNTERS
        .try_with(|c| c.map(|(a, d)| (a.get(), d.get())))
        .ok()
        .flatten()
}

/// Whether [`CountingAlloc`] is the process's global allocator, so that bytes are counted
/// per thread and a script's heap limit (`ScriptOptions::max_heap_bytes`) can hold. Found
/// out once, by watching this thread's counters across one allocation.
pub fn counts_per_thread() -> bool {
    static ACTIVE: OnceLock<bool> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let Some((before, _)) = jemalloc_thread_counters() else {
            return false;
        };
        let probe = std::hint::black_box(vec![0u8; 4096]);
        let after = jemalloc_thread_counters().map_or(before, |(a, _)| a);
        drop(probe);
        after.wrapping_sub(before) >= 4096
    })
}

/// This thread's (bytes ever allocated, bytes ever freed), if [`counts_per_thread`].
#[inline]
pub(crate) fn thread_counters() -> Option<(u64, u64)> {
    if counts_per_thread() {
        jemalloc_thread_counters()
    } else {
        None
    }
}

thread_local! {
    static THREAD_LIMIT: Cell<Option<usize>> = const { Cell::new(None) };
    /// This thread's copy of the meter and the generation it was read at.
    static METER_CACHE: Cell<(u64, Option<Meter>)> = const { Cell::new((u64::MAX, None)) };
}

/// Installs the process-wide meter: a function returning the bytes in use now. Replaces any
/// meter installed before.
pub fn set_meter(meter: fn() -> usize) {
    if let Ok(mut m) = METER.write() {
        *m = Some(meter);
        // Under the lock, after the store: a thread that sees the new generation reads the
        // new meter.
        METER_GENERATION.fetch_add(1, Ordering::Release);
    }
}

/// The bytes in use according to the meter, if one is installed.
pub fn in_use() -> Option<usize> {
    let generation = METER_GENERATION.load(Ordering::Acquire);
    let read = || METER.read().ok().and_then(|m| *m);
    let meter = METER_CACHE
        .try_with(|c| match c.get() {
            (g, meter) if g == generation => meter,
            _ => {
                let meter = read();
                c.set((generation, meter));
                meter
            }
        })
        .unwrap_or_else(|_| read())?;
    Some(meter())
}

/// Sets the heap limit the reader checks on this thread (invariant 1).
pub fn set_thread_limit(max: Option<usize>) {
    THREAD_LIMIT.with(|l| l.set(max));
}

/// The error raised when the heap limit `max` is reached.
pub(crate) fn limit_error(max: usize) -> LispError {
    LispError::new(
        ErrorKind::Limit,
        format!("heap limit of {max} bytes reached"),
    )
}

/// Fails with `:limit` if the bytes in use exceed `max`, or the script being polled on this
/// thread holds more than its own limit (invariant 2).
#[inline]
pub(crate) fn check(max: Option<usize>) -> LispResult<()> {
    crate::budget::check_heap()?;
    let Some(max) = max else { return Ok(()) };
    match in_use() {
        Some(used) if used > max => Err(limit_error(max)),
        _ => Ok(()),
    }
}

/// [`check`] against this thread's limit (invariant 1).
pub(crate) fn check_thread() -> LispResult<()> {
    check(THREAD_LIMIT.with(Cell::get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_or_no_meter_never_fails() {
        assert!(check(None).is_ok());
    }

    thread_local! {
        static FAKE_IN_USE: Cell<usize> = const { Cell::new(0) };
    }

    /// A meter that reads a per-thread figure, so other tests (other threads) see 0.
    fn fake_meter() -> usize {
        FAKE_IN_USE.with(Cell::get)
    }

    #[test]
    fn a_meter_replaced_on_one_thread_is_read_by_every_thread_at_its_next_check() {
        // Each thread keeps a copy of the meter (`METER_CACHE`); replacing it must reach a
        // thread that has read the old one.
        fn one() -> usize {
            1
        }
        fn two() -> usize {
            2
        }
        set_meter(one);
        let (to_reader, read_now) = std::sync::mpsc::channel::<()>();
        let (to_main, seen) = std::sync::mpsc::channel::<Option<usize>>();
        let reader = std::thread::spawn(move || {
            while read_now.recv().is_ok() {
                to_main.send(in_use()).expect("main waits");
            }
        });
        to_reader.send(()).expect("reader waits");
        assert_eq!(seen.recv().expect("reads"), Some(1));
        assert_eq!(in_use(), Some(1));
        set_meter(two);
        to_reader.send(()).expect("reader waits");
        assert_eq!(
            seen.recv().expect("reads"),
            Some(2),
            "the reader's copy was stale"
        );
        assert_eq!(in_use(), Some(2));
        drop(to_reader);
        reader.join().expect("reader ends");
    }

    #[test]
    fn over_the_limit_an_evaluation_fails_with_limit_and_the_runtime_survives() {
        set_meter(fake_meter);
        let rt = crate::Runtime::new();
        rt.set_limits(crate::Limits {
            max_heap_bytes: Some(1000),
            ..crate::Limits::default()
        })
        .expect("idle runtime");
        FAKE_IN_USE.with(|f| f.set(1001));
        let e = rt
            .eval_sync(
                "(define (f n) (if (= n 0) 0 (f (- n 1)))) (try (f 5000) (catch e :caught))",
                "t",
            )
            .expect_err("over the limit");
        assert_eq!(e.kind(), &ErrorKind::Limit);
        assert_eq!(e.message(), "heap limit of 1000 bytes reached");
        FAKE_IN_USE.with(|f| f.set(10));
        assert_eq!(
            rt.eval_sync("(+ 1 2)", "t").expect("within the limit"),
            crate::Value::Int(3)
        );
    }

    #[test]
    fn a_limit_passes_every_catch_but_runs_the_finally_blocks() {
        let rt = crate::Runtime::new();
        rt.set_limits(crate::Limits {
            max_string_len: 1000,
            ..crate::Limits::default()
        })
        .expect("idle runtime");
        let e = rt
            .eval_sync(
                "(define log '())
                 (try (try (try (make-string 5000 #\\a) (catch e (set! log (cons :caught log))))
                           (finally (set! log (cons :inner log))))
                      (finally (set! log (cons :outer log))))",
                "t",
            )
            .expect_err("over the limit");
        assert_eq!(e.kind(), &ErrorKind::Limit);
        let log = rt.eval_sync("log", "t").expect("runs");
        assert_eq!(crate::write_string(&log), "(:outer :inner)");
    }

    #[test]
    fn the_limit_error_names_the_limit() {
        let e = limit_error(64);
        assert_eq!(e.kind(), &ErrorKind::Limit);
        assert_eq!(e.message(), "heap limit of 64 bytes reached");
        assert!(!e.is_catchable());
    }
}
