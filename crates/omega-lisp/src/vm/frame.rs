//! A saved frame of the VM (see the invariants in `vm.rs`, 1, 2, 5 and 9).

use std::rc::Rc;

use crate::value::Closure;

/// A frame: the closure it runs, its saved pc, its base and whether its callee is on the stack,
/// packed in one word so a frame is a pair of scalars (moved in registers, not through a
/// temporary).
#[derive(Debug)]
pub(super) struct Frame {
    /// `None`: the closure of the frame above (invariant 9).
    pub(super) closure: Option<Rc<Closure>>,
    /// `pc << 33 | nc << 32 | base` (pc below 2^31, base below 2^32: stack invariant 2, code
    /// length); `nc` is 1 when the frame has no callee slot (entered by `CallGlobal` or
    /// `CallSelf`).
    pc_base: u64,
}

impl Frame {
    #[inline(always)]
    pub(super) fn new(closure: Rc<Closure>, pc: usize, base: usize, nc: usize) -> Frame {
        debug_assert!(pc < (1 << 31) && base <= u32::MAX as usize && nc <= 1);
        Frame {
            closure: Some(closure),
            pc_base: ((pc as u64) << 33) | ((nc as u64) << 32) | base as u64,
        }
    }

    /// A caller frame that runs the same closure as its callee (invariant 9).
    #[inline(always)]
    pub(super) fn same(pc: usize, base: usize, nc: usize) -> Frame {
        debug_assert!(pc < (1 << 31) && base <= u32::MAX as usize && nc <= 1);
        Frame {
            closure: None,
            pc_base: ((pc as u64) << 33) | ((nc as u64) << 32) | base as u64,
        }
    }

    #[inline(always)]
    pub(super) fn pc(&self) -> usize {
        (self.pc_base >> 33) as usize
    }

    #[inline(always)]
    pub(super) fn base(&self) -> usize {
        (self.pc_base & 0xffff_ffff) as usize
    }

    /// 1 if the frame has no callee slot, else 0.
    #[inline(always)]
    pub(super) fn nc(&self) -> usize {
        ((self.pc_base >> 32) & 1) as usize
    }

    /// The first stack slot the frame owns, where its result goes (invariant 1). Added before
    /// subtracting: a task's thunk runs as the outermost frame, and once a tail call of a
    /// global replaces it the frame has base 0 and no callee slot.
    #[inline(always)]
    pub(super) fn start(&self) -> usize {
        self.base() + self.nc() - 1
    }

    pub(super) fn set_pc(&mut self, pc: usize) {
        debug_assert!(pc < (1 << 31));
        self.pc_base = ((pc as u64) << 33) | (self.pc_base & 0x1_ffff_ffff);
    }
}

/// The closure `old` of the frame above `frames[..n]` (or of the running frame, with
/// `n == frames.len()`) is being replaced: frame `n - 1` gets it if it ran the same one
/// (invariant 9); otherwise it is dropped.
#[inline(always)]
pub(super) fn hand_down(frames: &mut [Frame], n: usize, old: Option<Rc<Closure>>) {
    if let Some(f) = n.checked_sub(1).and_then(|i| frames.get_mut(i)) {
        if f.closure.is_none() {
            f.closure = old;
        }
    }
}
