//! A native-stack budget for the recursive passes (expander, compiler).
//!
//! # Implementation details
//!
//! The guard remembers the address of a local variable when a pass starts and compares it with
//! the address of a local in each recursive call; once the difference exceeds the budget the
//! pass fails with a clean error instead of overflowing the thread's stack. This bounds native
//! stack use whatever the build profile (debug frames are many times larger than release ones)
//! and whatever the nesting — including macros that expand into ever deeper code.

/// Native stack a compile pass may use: half of a 2 MiB test thread.
pub(crate) const STACK_BUDGET: usize = 1024 * 1024;

/// Tracks native stack use from a starting point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StackGuard {
    start: usize,
}

#[inline(never)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl StackGuard {
    /// Starts measuring from the caller's frame.
    pub(crate) fn new() -> StackGuard {
        StackGuard {
            start: stack_address(),
        }
    }

    /// Whether the stack used since `new` is still within the budget.
    pub(crate) fn ok(&self) -> bool {
        self.start.abs_diff(stack_address()) < STACK_BUDGET
    }
}
