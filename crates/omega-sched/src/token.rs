//! Hierarchical cancellation tokens (SPEC §3.7).
//!
//! A [`CancellationToken`] is a cheap, clonable handle to one node of a tree. Cancelling a
//! node cancels its whole subtree with the same reason, runs the callbacks registered with
//! [`CancellationToken::on_cancel`] and wakes the [`CancelledFuture`]s returned by
//! [`CancellationToken::cancelled`].
//!
//! # Implementation details
//!
//! Every node is a `TreeNode`: an atomic `cancelled` flag (so that
//! [`CancellationToken::is_cancelled`] is a single `Acquire` load) plus a mutex around
//! `Inner`, which holds the reason, the parent link, the children, the registered
//! callbacks/wakers ("entries") and the number of live handles.
//!
//! * Parents own their children (`Slab<Arc<TreeNode>>`) and children own their parent
//!   (`Option<Arc<TreeNode>>`), so a node is reachable from both sides. The resulting `Arc`
//!   cycles are broken explicitly: when the last handle of a node is dropped, the node is
//!   unlinked from its parent and its children are handed over to that parent (or become
//!   roots), as in tokio-util's cancellation-token tree. A long-lived parent therefore never
//!   accumulates dead children.
//! * Callbacks and the wakers of pending `cancelled()` futures live in one
//!   `Slab<Entry>` per node. A guard or future remembers its key and removes its entry on
//!   `Drop`; a re-polled future overwrites its own slot, so nothing grows.
//! * `cancel` walks the subtree with an explicit worklist (never the native stack), and
//!   collects the entries of every node it cancels. They are run after every lock has
//!   been released, each under [`std::panic::catch_unwind`]. A panic in a callback is
//!   swallowed: it neither stops the other callbacks nor the propagation to the children,
//!   and it is not re-raised (and not logged) afterwards.
//! * Once cancelled, a node has no children and no entries and never gets new ones: new
//!   children are born cancelled and detached, new callbacks run immediately.
//!
//! # Invariants
//!
//! 1. **Tree links.** `inner.parent == Some(p)` iff the node is stored in `p.children` under
//!    the key `inner.parent_key` — except for the nodes parked in the worklist of a running
//!    `cancel(p)` (see 4). A link is only ever changed while holding the locks of both of its
//!    ends (parent first).
//! 2. **Cancellation is final and published under the node's lock.** `reason` goes from
//!    `None` to `Some` exactly once; in the same critical section the node's children and
//!    entries are taken out and `cancelled` is stored with `Release` after `reason`. Every
//!    operation that adds to a node (`child`, `on_cancel`, polling `cancelled()`) checks
//!    `reason` under that same lock, so it either runs before the cancellation (and its
//!    child/entry is taken out by it) or after it (and sees the reason). This settles the
//!    races *cancel ‖ child*, *cancel ‖ on_cancel* (the callback runs exactly once) and
//!    *cancel ‖ poll* (no lost wake-up).
//! 3. **Handles keep nodes linked.** `num_handles` counts the [`CancellationToken`] values of
//!    the node; an armed [`OnCancelGuard`] and a [`CancelledFuture`] each own one, so a
//!    callback or waker can never sit on a node that has been unlinked from its ancestors.
//!    The drop of the last handle unlinks the node (1), moves its children to its parent (or
//!    makes them roots) and takes out its entries. Consequently a `TreeNode` whose last `Arc`
//!    goes away has no parent, no children and no entries: freeing it never recurses, never
//!    locks and never runs user code, so node `Arc`s may be released anywhere.
//! 4. **`cancel(r)` holds `r`'s lock from start to end.** It first takes all of `r`'s
//!    children into a worklist; while cancelling a worklist node `w` (locks `r`, `w`), it
//!    *adopts* `w`'s children: each gets `parent = r` (lock `r`, `w`, child) and joins the
//!    worklist. Worklist nodes thus have `parent == r` without being in `r.children`; nobody
//!    can observe that, because every link change of such a node needs `r`'s lock first
//!    (5). Each processed node ends with `parent = None`. This resolves *cancel ‖ re-parenting*:
//!    if a middle node's last handle drops while an ancestor is cancelled, either its
//!    children were moved up before the worklist reached them (and are found there), or the
//!    middle node was processed first and its children were adopted by `r`, so the late
//!    unlink finds no children to move. Grandchildren are never missed.
//! 5. **Locking a node together with its parent** (`with_locked_node_and_parent`): read the
//!    parent under the node's lock, release it, lock the parent, lock the node again and
//!    check that the parent is unchanged; retry otherwise.
//! 6. **No user code under a lock.** Callbacks, `Waker::wake` and the drop of callback
//!    closures and replaced wakers happen only after all locks are released. Callbacks may
//!    therefore call anything on any token, including the one being cancelled.
//! 7. **Entry keys stay valid.** A key held by a guard or a future names its own entry as
//!    long as the node is not cancelled (entries are only removed by their owner, or all at
//!    once by cancellation or by the last-handle drop, which cannot happen while the owner
//!    holds a handle). After cancellation the slab is empty and never refilled (2), so
//!    owners check `reason` before removing and never remove a stranger's entry.
//!
//! # Lock order
//!
//! *Parent before child, never the reverse*: a thread holding the lock of node `x` only ever
//! acquires the lock of a node that is, or was, a descendant of `x` (`cancel`: worklist node,
//! then one grandchild; unlink: node, then one child at a time; 5: parent, then node). A
//! node's parent is always created before it, and re-parenting only moves a node up to one
//! of its ancestors, so every such acquisition goes to a node created *later* than `x`:
//! locks are taken in creation order, hence no cycle and no deadlock. At most three locks
//! are held at once, and none while user code runs (6).

use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::sync::{self, AtomicBool, Mutex, Ordering};

/// The error returned by [`CancellationToken::check`] once the token is cancelled.
///
/// ```
/// use omega_sched::CancellationToken;
///
/// let token = CancellationToken::new();
/// token.cancel("user requested");
/// let err = token.check().unwrap_err();
/// assert_eq!(err.to_string(), "cancelled: user requested");
/// assert_eq!(&*err.reason, "user requested");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cancelled: {reason}")]
pub struct Cancelled {
    /// The reason given to the first [`CancellationToken::cancel`] that reached the token.
    pub reason: Arc<str>,
}

/// A registered callback, the waker of a pending [`CancelledFuture`], or a child task's link.
enum Entry {
    /// From [`CancellationToken::on_cancel`]; called with the reason.
    Callback(Box<dyn FnOnce(&str) + Send>),
    /// From polling [`CancellationToken::cancelled`]; woken.
    Waker(Waker),
    /// A child task linked to this token (the scheduler's `submit`, a [`TaskLink`]): inline,
    /// not a boxed closure (no allocation per child task, SPEC §9). Fields of the variant,
    /// not a `TaskLink` in it, so that `key` fills the gap after the tag: the entry stays
    /// 24 bytes.
    Link {
        shared: crate::executor::SharedRef,
        key: u32,
        seq: u64,
    },
}

/// A child task's link to the token it descends from: when the token is cancelled, the
/// task is (by its scheduler's key and seq; nothing happens if the scheduler or the task is
/// gone).
pub(crate) struct TaskLink {
    pub shared: crate::executor::SharedRef,
    pub key: u32,
    pub seq: u64,
}

// An entry is a slot in every token's slab: a child's link must not make it bigger.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() <= 24);

impl From<TaskLink> for Entry {
    fn from(l: TaskLink) -> Entry {
        Entry::Link {
            shared: l.shared,
            key: l.key,
            seq: l.seq,
        }
    }
}

impl Entry {
    /// Runs the entry, swallowing any panic (invariant 6: never called under a lock).
    fn run(self, reason: &str) {
        // The payload is dropped here; a panic is deliberately not re-raised nor logged.
        let _ = catch_unwind(AssertUnwindSafe(move || match self {
            Entry::Callback(f) => f(reason),
            Entry::Waker(waker) => waker.wake(),
            Entry::Link { shared, key, seq } => {
                if let Some(s) = shared.upgrade() {
                    s.cancel_at(key, seq, &Arc::from(reason));
                }
            }
        }));
    }
}

/// One node of the token tree, shared by all clones of one token.
struct TreeNode {
    /// Set (with `Release`) right after `inner.reason` becomes `Some` (invariant 2).
    cancelled: AtomicBool,
    /// Everything else.
    inner: Mutex<Inner>,
}

/// The lock-protected part of a [`TreeNode`].
struct Inner {
    /// Current parent; `None` for roots and for detached or cancelled nodes.
    parent: Option<sync::Arc<TreeNode>>,
    /// Key of this node in `parent.children` (meaningless while in a cancel worklist).
    parent_key: usize,
    /// Live direct children (invariant 1); empty once cancelled.
    children: Slab<sync::Arc<TreeNode>>,
    /// Registered callbacks and wakers; empty once cancelled.
    entries: Slab<Entry>,
    /// `Some` once cancelled (invariant 2).
    reason: Option<Arc<str>>,
    /// Number of live [`CancellationToken`] values for this node (invariant 3).
    num_handles: usize,
}

impl TreeNode {
    /// A node with one handle, either linked under `parent` at `parent_key` or, when
    /// `reason` is given, born cancelled and detached.
    fn new(
        parent: Option<sync::Arc<TreeNode>>,
        parent_key: usize,
        reason: Option<Arc<str>>,
    ) -> sync::Arc<Self> {
        sync::Arc::new(TreeNode {
            cancelled: AtomicBool::new(reason.is_some()),
            inner: Mutex::new(Inner {
                parent,
                parent_key,
                children: Slab::new(),
                entries: Slab::new(),
                reason,
                num_handles: 1,
            }),
        })
    }
}

/// Inserts `entry`, giving a node's first entry room for itself only: most nodes (one per
/// task) only ever hold one, the task's link, and the slab's default first growth (four
/// entries, 96 bytes) is wasted on each of them.
fn insert_entry(entries: &mut Slab<Entry>, entry: Entry) -> usize {
    if entries.capacity() == 0 {
        entries.reserve_exact(1);
    }
    entries.insert(entry)
}

/// Marks a locked, not yet cancelled node as cancelled and moves its entries to `out`.
fn mark_cancelled(node: &TreeNode, locked: &mut Inner, reason: &Arc<str>, out: &mut Vec<Entry>) {
    debug_assert!(locked.reason.is_none() && locked.children.is_empty());
    locked.reason = Some(Arc::clone(reason));
    node.cancelled.store(true, Ordering::Release);
    out.extend(mem::take(&mut locked.entries).into_iter().map(|(_, e)| e));
}

/// Runs `f` with `node` locked and, if it has a parent, the parent locked too (invariant 5).
fn with_locked_node_and_parent<R>(
    node: &sync::Arc<TreeNode>,
    f: impl FnOnce(&mut Inner, Option<(&sync::Arc<TreeNode>, &mut Inner)>) -> R,
) -> R {
    let mut locked = node.inner.lock();
    loop {
        let Some(parent) = locked.parent.clone() else {
            return f(&mut locked, None);
        };
        // Lock order: the parent must be locked before the node.
        drop(locked);
        let mut locked_parent = parent.inner.lock();
        locked = node.inner.lock();
        if locked
            .parent
            .as_ref()
            .is_some_and(|p| sync::Arc::ptr_eq(p, &parent))
        {
            return f(&mut locked, Some((&parent, &mut locked_parent)));
        }
        // Re-parented (or detached by a cancel) in between: retry with the new parent.
    }
}

/// Unlinks a node whose last handle was just dropped (invariant 3).
fn unlink(node: &sync::Arc<TreeNode>) {
    let entries = with_locked_node_and_parent(node, |locked, parent| {
        match parent {
            Some((parent, locked_parent)) => {
                // Hand the children over to the parent so that they are still cancelled
                // through it (the parent is not cancelled: invariants 1 and 2).
                for (_, child) in mem::take(&mut locked.children) {
                    let key = locked_parent.children.insert(sync::Arc::clone(&child));
                    let mut locked_child = child.inner.lock();
                    locked_child.parent = Some(sync::Arc::clone(parent));
                    locked_child.parent_key = key;
                }
                let removed = locked_parent.children.try_remove(locked.parent_key);
                debug_assert!(removed.is_some_and(|n| sync::Arc::ptr_eq(&n, node)));
                locked.parent = None;
            }
            None => {
                // Nobody can cancel this node any more: its children become roots.
                for (_, child) in mem::take(&mut locked.children) {
                    child.inner.lock().parent = None;
                }
            }
        }
        // Disarmed callbacks die with the node; dropped below, outside the locks (inv. 6).
        mem::take(&mut locked.entries)
    });
    drop(entries);
}

/// A handle to one node of a tree of cancellation tokens.
///
/// Clones share the node. [`child`](Self::child) creates a new node that is cancelled
/// whenever this one is, with the same reason. See the [module docs](self) for the design.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use omega_sched::CancellationToken;
///
/// let root = CancellationToken::new();
/// let child = root.child();
/// let calls = Arc::new(AtomicUsize::new(0));
/// let calls2 = Arc::clone(&calls);
/// let guard = child.on_cancel(move |reason| {
///     assert_eq!(reason, "user requested");
///     calls2.fetch_add(1, Ordering::SeqCst);
/// });
///
/// let waiter = child.cancelled();
/// assert!(root.cancel("user requested"));
/// assert!(!root.cancel("too late")); // first reason wins
///
/// assert!(child.is_cancelled());
/// assert_eq!(child.reason().as_deref(), Some("user requested"));
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// assert_eq!(&*futures::executor::block_on(waiter), "user requested");
/// assert!(child.check().is_err());
/// drop(guard); // already ran: nothing left to unregister
/// ```
///
/// # When a task observes it
///
/// A task's token (from [`current_token`](crate::current_token) or
/// [`TaskHandle::token`](crate::TaskHandle::token), created on first use) is linked to the
/// task both ways: cancelling the token cancels the task and its children, and cancelling
/// the task cancels the token. The task observes its cancellation at every later
/// checkpoint (level-triggered) until it ends; a token itself never "un-cancels". See the
/// scheduler's `context` module docs for the checkpoints, `shield` and cancel scopes.
///
/// # Memory ordering
///
/// `cancel` publishes with `Release` and `is_cancelled` reads with `Acquire`: whatever the
/// cancelling thread did before `cancel` is visible to a thread that observes
/// `is_cancelled() == true`. A token's descendants are marked before the token itself.
pub struct CancellationToken {
    node: sync::Arc<TreeNode>,
}

impl CancellationToken {
    /// Creates a new, uncancelled root token.
    #[must_use]
    pub fn new() -> Self {
        CancellationToken {
            node: TreeNode::new(None, 0, None),
        }
    }

    /// Creates a child token, cancelled (with this token's reason) whenever this one is.
    ///
    /// If this token is already cancelled, the child is born cancelled with the same
    /// reason. Cancelling the child does not affect this token.
    #[must_use]
    pub fn child(&self) -> CancellationToken {
        let mut locked = self.node.inner.lock();
        // Invariant 2: decided under the parent's lock.
        let node = if let Some(reason) = &locked.reason {
            TreeNode::new(None, 0, Some(Arc::clone(reason)))
        } else {
            let entry = locked.children.vacant_entry();
            let node = TreeNode::new(Some(sync::Arc::clone(&self.node)), entry.key(), None);
            entry.insert(sync::Arc::clone(&node));
            node
        };
        drop(locked);
        CancellationToken { node }
    }

    /// Cancels this token and its whole subtree with `reason`.
    ///
    /// Idempotent: only the first call reaching a token sets its reason. Returns `true` iff
    /// this call performed the cancellation of this token.
    ///
    /// The callbacks of all newly cancelled tokens run on the calling thread before `cancel`
    /// returns, outside of any internal lock, in unspecified order (this token's first).
    /// A panicking callback is caught and ignored: the remaining callbacks still run, the
    /// subtree is still cancelled, and `cancel` does not panic. Pending
    /// [`cancelled`](Self::cancelled) futures are woken. Subtrees of any size and depth are
    /// handled without recursion.
    pub fn cancel(&self, reason: impl Into<Arc<str>>) -> bool {
        let reason: Arc<str> = reason.into();
        let mut own_entries = Vec::new();
        let mut descendant_entries = Vec::new();
        {
            // Invariant 4: held until the whole subtree is cancelled.
            let mut locked_root = self.node.inner.lock();
            if locked_root.reason.is_some() {
                return false;
            }
            let mut worklist: Vec<sync::Arc<TreeNode>> = mem::take(&mut locked_root.children)
                .into_iter()
                .map(|(_, child)| child)
                .collect();
            while let Some(node) = worklist.pop() {
                let mut locked = node.inner.lock();
                locked.parent = None;
                if locked.reason.is_some() {
                    // Cancelled on its own earlier: no children, no entries (inv. 2).
                    continue;
                }
                for (_, grandchild) in mem::take(&mut locked.children) {
                    // Adopt (invariant 4): lock order root, node, grandchild.
                    let mut locked_grandchild = grandchild.inner.lock();
                    locked_grandchild.parent = Some(sync::Arc::clone(&self.node));
                    locked_grandchild.parent_key = usize::MAX;
                    drop(locked_grandchild);
                    worklist.push(grandchild);
                }
                mark_cancelled(&node, &mut locked, &reason, &mut descendant_entries);
            }
            mark_cancelled(&self.node, &mut locked_root, &reason, &mut own_entries);
        }
        // Invariant 6: no lock held from here on.
        for entry in own_entries.into_iter().chain(descendant_entries) {
            entry.run(&reason);
        }
        true
    }

    /// Returns `true` once this token is cancelled. Lock-free (one `Acquire` load).
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.load(Ordering::Acquire)
    }

    /// The cancellation reason, or `None` if the token is not cancelled.
    pub fn reason(&self) -> Option<Arc<str>> {
        if !self.is_cancelled() {
            return None;
        }
        self.node.inner.lock().reason.clone()
    }

    /// `Ok(())` while the token is not cancelled, otherwise [`Cancelled`] with the reason.
    pub fn check(&self) -> Result<(), Cancelled> {
        match self.reason() {
            None => Ok(()),
            Some(reason) => Err(Cancelled { reason }),
        }
    }

    /// Registers `f` to run once, with the reason, when this token is cancelled.
    ///
    /// The callback runs synchronously on the thread that calls [`cancel`](Self::cancel)
    /// (on this token or an ancestor), outside any internal lock, so it may use any token.
    /// If the token is already cancelled, `f` runs immediately on the calling thread and the
    /// returned guard is inert. Panics in `f` are caught and ignored.
    ///
    /// Dropping the returned guard unregisters the callback (if it has not run yet), so
    /// registrations do not pile up on long-lived tokens; see
    /// [`OnCancelGuard::detach`] to keep it registered instead (and beware `let _ = ..`,
    /// which drops the guard at once). The guard keeps the token
    /// alive (it owns a handle).
    pub fn on_cancel<F>(&self, f: F) -> OnCancelGuard
    where
        F: FnOnce(&str) + Send + 'static,
    {
        self.register(Entry::Callback(Box::new(f)))
    }

    /// Wakes `waker` once when this token is cancelled (at once if it already is): the
    /// allocation-free form of `on_cancel(move |_| waker.wake())` that the executor uses for
    /// every task. Dropping the guard unregisters it.
    pub fn wake_on_cancel(&self, waker: Waker) -> OnCancelGuard {
        self.register(Entry::Waker(waker))
    }

    fn register(&self, entry: Entry) -> OnCancelGuard {
        let token = self.clone();
        let mut locked = self.node.inner.lock();
        // Invariant 2: register or run, decided under the lock.
        if let Some(reason) = locked.reason.clone() {
            drop(locked);
            drop(token);
            entry.run(&reason);
            return OnCancelGuard { registration: None };
        }
        let key = insert_entry(&mut locked.entries, entry);
        drop(locked);
        OnCancelGuard {
            registration: Some(Registration { token, key }),
        }
    }

    /// Registers `f` like [`on_cancel`](Self::on_cancel) unless this token is cancelled
    /// already: then `f` is dropped without running and the reason is returned. Safe to
    /// call under a lock that `f` itself takes (it never runs `f`). Tests and loom models
    /// only: the scheduler links children with `link_task_unless_cancelled`, the same rule
    /// without a boxed closure.
    #[cfg(test)]
    pub(crate) fn on_cancel_unless_cancelled<F>(&self, f: F) -> Result<OnCancelGuard, Arc<str>>
    where
        F: FnOnce(&str) + Send + 'static,
    {
        self.register_unless_cancelled(Entry::Callback(Box::new(f)))
    }

    /// Links a child task to this token unless the token is cancelled already: then nothing
    /// is registered and the reason is returned. Never runs the link, so it is safe under the
    /// scheduler's core lock (which the link takes when it runs): the scheduler links a child
    /// task to its parent's token this way, and a child whose parent is cancelled already is
    /// born cancelled with the returned reason. No closure is boxed (SPEC §9).
    pub(crate) fn link_task_unless_cancelled(
        &self,
        link: TaskLink,
    ) -> Result<OnCancelGuard, Arc<str>> {
        self.register_unless_cancelled(link.into())
    }

    fn register_unless_cancelled(&self, entry: Entry) -> Result<OnCancelGuard, Arc<str>> {
        let mut locked = self.node.inner.lock();
        // Invariant 2: register or refuse, decided under the lock.
        if let Some(reason) = locked.reason.clone() {
            drop(locked);
            drop(entry);
            return Err(reason);
        }
        let key = insert_entry(&mut locked.entries, entry);
        // Invariant 3: the registration's handle, counted under the same lock.
        locked.num_handles += 1;
        drop(locked);
        let token = CancellationToken {
            node: sync::Arc::clone(&self.node),
        };
        Ok(OnCancelGuard {
            registration: Some(Registration { token, key }),
        })
    }

    /// Returns a future that resolves to the reason once this token is cancelled.
    ///
    /// The future owns a clone of the token (it is `'static` and `Send`).
    ///
    /// # Cancellation safety
    ///
    /// Dropping the future while pending unregisters its waker; polling it repeatedly
    /// reuses one registration.
    pub fn cancelled(&self) -> CancelledFuture {
        CancelledFuture {
            token: self.clone(),
            key: None,
        }
    }

    /// Number of callbacks and pending-future wakers registered on this very token
    /// (introspection; not those of its children).
    pub fn callback_count(&self) -> usize {
        self.node.inner.lock().entries.len()
    }

    /// Number of live direct children of this token (introspection).
    ///
    /// Children leave the count when their last handle is dropped (their own children then
    /// count for this token) and when this token is cancelled (a cancelled token keeps no
    /// children, so this is then `0`).
    pub fn child_count(&self) -> usize {
        self.node.inner.lock().children.len()
    }

    /// Returns `true` if both handles refer to the same token (not merely equal state).
    pub fn same_token(&self, other: &CancellationToken) -> bool {
        sync::Arc::ptr_eq(&self.node, &other.node)
    }
}

impl Default for CancellationToken {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for CancellationToken {
    fn clone(&self) -> Self {
        self.node.inner.lock().num_handles += 1;
        CancellationToken {
            node: sync::Arc::clone(&self.node),
        }
    }
}

impl Drop for CancellationToken {
    fn drop(&mut self) {
        let last = {
            let mut locked = self.node.inner.lock();
            locked.num_handles -= 1;
            locked.num_handles == 0
        };
        if last {
            unlink(&self.node);
        }
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .field("reason", &self.reason())
            .finish_non_exhaustive()
    }
}

/// An armed registration: the handle that keeps the node linked and the entry's key.
struct Registration {
    token: CancellationToken,
    key: usize,
}

impl Registration {
    /// Removes the entry if it is still registered; returns it to be dropped unlocked.
    fn take_entry(&self) -> Option<Entry> {
        let mut locked = self.token.node.inner.lock();
        // Invariant 7: after cancellation the key may not be ours any more.
        if locked.reason.is_some() {
            return None;
        }
        let entry = locked.entries.try_remove(self.key);
        debug_assert!(entry.is_some(), "registered entry vanished");
        entry
    }
}

/// Keeps a callback registered by [`CancellationToken::on_cancel`].
///
/// Dropping the guard unregisters the callback if it has not run yet. The guard owns a
/// handle to the token.
///
/// **Beware `let _ = token.on_cancel(..)`:** `_` drops the guard at once, so the callback
/// is unregistered before it can ever run. Bind it (`let _guard = ..`) for as long as the
/// callback should stay, or call [`detach`](Self::detach) to keep it registered for the
/// token's lifetime.
#[must_use = "dropping the guard unregisters the callback at once (`let _ = ..` too): \
              keep it in a named binding, or call `.detach()` to keep the callback"]
pub struct OnCancelGuard {
    /// `None` once the callback ran at registration time or the guard was disarmed.
    registration: Option<Registration>,
}

impl OnCancelGuard {
    /// Lets go of the guard but keeps the callback registered for the token's lifetime.
    ///
    /// Unlike [`std::mem::forget`] this leaks nothing: the callback is freed when it runs,
    /// or without running when the token's last handle is dropped.
    pub fn detach(mut self) {
        // Drops the handle (maybe the last one: then the callback is freed by `unlink`).
        drop(self.registration.take());
    }

    /// The token this guard's callback is registered on, while armed.
    pub(crate) fn token(&self) -> Option<&CancellationToken> {
        self.registration.as_ref().map(|r| &r.token)
    }

    /// An inert guard (nothing registered).
    pub(crate) fn inert() -> Self {
        OnCancelGuard { registration: None }
    }

    /// The same as [`detach`](Self::detach) (its former name).
    pub fn disarm(self) {
        self.detach();
    }
}

impl Drop for OnCancelGuard {
    fn drop(&mut self) {
        if let Some(registration) = self.registration.take() {
            // Invariant 6: the closure is dropped after the lock is released.
            drop(registration.take_entry());
        }
    }
}

impl fmt::Debug for OnCancelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OnCancelGuard");
        match &self.registration {
            Some(r) => d.field("armed", &true).field("token", &r.token),
            None => d.field("armed", &false),
        }
        .finish()
    }
}

/// The future returned by [`CancellationToken::cancelled`]; resolves to the reason.
///
/// Owns a clone of the token. Unregisters its waker when dropped while pending.
#[must_use = "futures do nothing unless polled"]
pub struct CancelledFuture {
    token: CancellationToken,
    /// Key of this future's waker entry, if registered (invariant 7).
    key: Option<usize>,
}

impl Future for CancelledFuture {
    type Output = Arc<str>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Arc<str>> {
        let this = &mut *self;
        let mut replaced = None;
        let poll = {
            let mut locked = this.token.node.inner.lock();
            // Invariant 2: checked under the same lock that `cancel` takes the wakers under.
            if let Some(reason) = &locked.reason {
                this.key = None;
                Poll::Ready(Arc::clone(reason))
            } else {
                let slot = match this.key {
                    Some(key) => match locked.entries.get_mut(key) {
                        Some(Entry::Waker(waker)) => Some(waker),
                        _ => None,
                    },
                    None => None,
                };
                match slot {
                    Some(waker) => {
                        if !waker.will_wake(cx.waker()) {
                            replaced = Some(mem::replace(waker, cx.waker().clone()));
                        }
                    }
                    None => {
                        debug_assert!(this.key.is_none(), "waker entry vanished");
                        let entry = Entry::Waker(cx.waker().clone());
                        this.key = Some(insert_entry(&mut locked.entries, entry));
                    }
                }
                Poll::Pending
            }
        };
        // Invariant 6: the old waker is dropped outside the lock.
        drop(replaced);
        poll
    }
}

impl Drop for CancelledFuture {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let entry = {
                let mut locked = self.token.node.inner.lock();
                if locked.reason.is_none() {
                    locked.entries.try_remove(key)
                } else {
                    None
                }
            };
            drop(entry);
        }
    }
}

impl fmt::Debug for CancelledFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelledFuture")
            .field("token", &self.token)
            .field("registered", &self.key.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Barrier;
    use std::thread;

    fn counter() -> (Arc<AtomicUsize>, impl FnOnce(&str) + Send + 'static) {
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        (count, move |_: &str| {
            c.fetch_add(1, SeqCst);
        })
    }

    #[test]
    fn bounds() {
        fn send_sync_clone<T: Send + Sync + Clone + fmt::Debug + Default + 'static>() {}
        fn send<T: Send + 'static>() {}
        fn future<T: Future<Output = Arc<str>> + Unpin>() {}
        send_sync_clone::<CancellationToken>();
        send::<CancelledFuture>();
        send::<OnCancelGuard>();
        send::<Cancelled>();
        future::<CancelledFuture>();
    }

    #[test]
    fn first_reason_wins_and_cancel_return_value() {
        let t = CancellationToken::new();
        assert!(!t.is_cancelled());
        assert_eq!(t.reason(), None);
        assert!(t.check().is_ok());
        assert!(t.cancel("first"));
        assert!(!t.cancel("second"));
        assert!(!t.clone().cancel("third"));
        assert!(t.is_cancelled());
        assert_eq!(t.reason().as_deref(), Some("first"));
    }

    #[test]
    fn check_error_message() {
        let t = CancellationToken::default();
        t.cancel(String::from("user requested"));
        let err = t.check().unwrap_err();
        assert_eq!(err.to_string(), "cancelled: user requested");
        assert_eq!(
            err,
            Cancelled {
                reason: Arc::from("user requested")
            }
        );
    }

    #[test]
    fn child_inherits_reason() {
        let root = CancellationToken::new();
        let child = root.child();
        let grandchild = child.child();
        assert!(!child.same_token(&root));
        assert!(child.same_token(&child.clone()));
        assert!(root.cancel("stop"));
        assert_eq!(child.reason().as_deref(), Some("stop"));
        assert_eq!(grandchild.reason().as_deref(), Some("stop"));
        // The children were cancelled by the root, not by their own cancel().
        assert!(!child.cancel("other"));
    }

    #[test]
    fn cancelling_child_does_not_cancel_parent() {
        let root = CancellationToken::new();
        let child = root.child();
        let grandchild = child.child();
        assert!(child.cancel("child"));
        assert!(!root.is_cancelled());
        assert_eq!(grandchild.reason().as_deref(), Some("child"));
        // An already-cancelled child keeps its own reason when the root is cancelled.
        assert!(root.cancel("root"));
        assert_eq!(child.reason().as_deref(), Some("child"));
    }

    #[test]
    fn child_of_cancelled_token_is_born_cancelled() {
        let root = CancellationToken::new();
        root.cancel("gone");
        let child = root.child();
        assert!(child.is_cancelled());
        assert_eq!(child.reason().as_deref(), Some("gone"));
        assert_eq!(root.child_count(), 0);
        assert!(!child.cancel("again"));
    }

    #[test]
    fn grandchildren_reparented_when_middle_dropped() {
        let root = CancellationToken::new();
        let middle = root.child();
        let grandchildren: Vec<_> = (0..3).map(|_| middle.child()).collect();
        assert_eq!(root.child_count(), 1);
        drop(middle);
        assert_eq!(root.child_count(), 3);
        root.cancel("bye");
        for g in &grandchildren {
            assert_eq!(g.reason().as_deref(), Some("bye"));
        }
    }

    #[test]
    fn children_of_dropped_root_become_roots() {
        let root = CancellationToken::new();
        let child = root.child();
        let grandchild = child.child();
        drop(root);
        assert_eq!(child.child_count(), 1);
        child.cancel("x");
        assert!(grandchild.is_cancelled());
    }

    #[test]
    fn child_count_returns_to_zero() {
        let root = CancellationToken::new();
        let children: Vec<_> = (0..100).map(|_| root.child()).collect();
        let nested: Vec<_> = children.iter().map(|c| c.child()).collect();
        assert_eq!(root.child_count(), 100);
        drop(children);
        assert_eq!(root.child_count(), 100); // the nested ones moved up
        drop(nested);
        assert_eq!(root.child_count(), 0);
        for _ in 0..10_000 {
            let _c = root.child().child();
        }
        assert_eq!(root.child_count(), 0);
    }

    #[test]
    fn on_cancel_runs_once() {
        let t = CancellationToken::new();
        let (count, f) = counter();
        let guard = t.on_cancel(f);
        assert_eq!(t.callback_count(), 1);
        t.cancel("a");
        t.cancel("b");
        assert_eq!(count.load(SeqCst), 1);
        assert_eq!(t.callback_count(), 0);
        drop(guard);
        assert_eq!(count.load(SeqCst), 1);
    }

    #[test]
    fn on_cancel_receives_reason_from_ancestor() {
        let root = CancellationToken::new();
        let seen = Arc::new(parking_lot::Mutex::new(None));
        let s = Arc::clone(&seen);
        // The guard keeps the child linked even though the child handle is dropped.
        let _guard = root
            .child()
            .on_cancel(move |r| *s.lock() = Some(r.to_owned()));
        root.cancel("from root");
        assert_eq!(seen.lock().as_deref(), Some("from root"));
    }

    #[test]
    fn on_cancel_unless_cancelled_registers_or_refuses_without_running() {
        let t = CancellationToken::new();
        let (count, f) = counter();
        let guard = t.on_cancel_unless_cancelled(f).expect("not cancelled yet");
        assert_eq!(t.callback_count(), 1);
        assert!(guard.token().is_some_and(|g| g.same_token(&t)));
        t.cancel("gone");
        assert_eq!(count.load(SeqCst), 1);
        drop(guard);
        let (late, f) = counter();
        let refused = t.on_cancel_unless_cancelled(f).map(|_| ()).unwrap_err();
        assert_eq!(&*refused, "gone");
        assert_eq!(late.load(SeqCst), 0, "a refused callback never runs");
        // Dropping an armed guard unregisters; the token's last handle can be the guard's.
        let t = CancellationToken::new();
        let (never, f) = counter();
        let guard = t.on_cancel_unless_cancelled(f).expect("not cancelled");
        drop(t);
        drop(guard);
        assert_eq!(never.load(SeqCst), 0);
    }

    #[test]
    fn on_cancel_after_cancel_runs_immediately() {
        let t = CancellationToken::new();
        t.cancel("done");
        let (count, f) = counter();
        let guard = t.on_cancel(f);
        assert_eq!(count.load(SeqCst), 1);
        assert_eq!(t.callback_count(), 0);
        drop(guard);
        assert_eq!(count.load(SeqCst), 1);
    }

    #[test]
    fn guard_drop_unregisters() {
        let t = CancellationToken::new();
        let (count, f) = counter();
        drop(t.on_cancel(f));
        assert_eq!(t.callback_count(), 0);
        for _ in 0..1_000_000 {
            let _guard = t.on_cancel(|_| {});
        }
        assert_eq!(t.callback_count(), 0);
        assert!(t.node.inner.lock().entries.capacity() <= 16);
        t.cancel("x");
        assert_eq!(count.load(SeqCst), 0);
    }

    #[test]
    fn disarmed_callback_still_runs_and_is_freed_on_drop() {
        let t = CancellationToken::new();
        let (count, f) = counter();
        t.on_cancel(f).disarm();
        assert_eq!(t.callback_count(), 1);
        t.cancel("x");
        assert_eq!(count.load(SeqCst), 1);

        // Freed without running when the token goes away.
        let t = CancellationToken::new();
        let marker = Arc::new(());
        let m = Arc::clone(&marker);
        t.on_cancel(move |_| drop(m)).disarm();
        assert_eq!(Arc::strong_count(&marker), 2);
        drop(t);
        assert_eq!(Arc::strong_count(&marker), 1);
    }

    #[test]
    fn panicking_callback_does_not_stop_others_or_children() {
        let root = CancellationToken::new();
        let child = root.child();
        let (before, f1) = counter();
        let (after, f2) = counter();
        let (in_child, f3) = counter();
        let _g1 = root.on_cancel(f1);
        let _g2 = root.on_cancel(|_| panic!("callback panic (expected in this test)"));
        let _g3 = root.on_cancel(f2);
        let _g4 = child.on_cancel(|_| panic!("child callback panic (expected)"));
        let _g5 = child.on_cancel(f3);
        assert!(root.cancel("x"));
        assert_eq!(before.load(SeqCst), 1);
        assert_eq!(after.load(SeqCst), 1);
        assert_eq!(in_child.load(SeqCst), 1);
        assert!(child.is_cancelled());
        // Also when registered after cancellation.
        drop(root.on_cancel(|_| panic!("late callback panic (expected)")));
    }

    #[test]
    fn callback_reentrancy_does_not_deadlock() {
        let root = CancellationToken::new();
        let child = root.child();
        let (nested, f) = counter();
        let r = root.clone();
        let c = child.clone();
        let _g = child.on_cancel(move |_| {
            assert!(!r.cancel("again"));
            assert!(!c.cancel("again"));
            assert!(c.is_cancelled() && r.is_cancelled());
            assert_eq!(c.reason().as_deref(), Some("x"));
            assert!(c.child().is_cancelled());
            assert_eq!(c.callback_count(), 0);
            assert_eq!(r.child_count(), 0);
            drop(c.on_cancel(f)); // runs immediately
            let other = CancellationToken::new();
            let o = other.clone();
            drop(other.on_cancel(move |_| drop(o))); // cancels another token from here
            other.cancel("nested");
        });
        let r2 = root.clone();
        let _g2 = root.on_cancel(move |_| drop(r2.on_cancel(|_| {})));
        root.cancel("x");
        assert_eq!(nested.load(SeqCst), 1);
    }

    #[test]
    fn cancelled_future_resolves_with_reason() {
        let t = CancellationToken::new();
        let fut = t.cancelled();
        let t2 = t.clone();
        let handle = thread::spawn(move || futures::executor::block_on(fut));
        t2.cancel("done");
        assert_eq!(&*handle.join().unwrap(), "done");
        // Already cancelled: resolves at once.
        assert_eq!(&*futures::executor::block_on(t.cancelled()), "done");
        assert_eq!(&*futures::executor::block_on(t.child().cancelled()), "done");
    }

    #[test]
    fn cancelled_future_on_tokio() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let root = CancellationToken::new();
        let child = root.child();
        let task = rt.spawn(child.cancelled());
        rt.block_on(tokio::task::yield_now());
        root.cancel("shutdown");
        assert_eq!(&*rt.block_on(task).unwrap(), "shutdown");
    }

    #[test]
    fn dropped_pending_future_unregisters() {
        let t = CancellationToken::new();
        let mut fut = t.cancelled();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..100 {
            assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        }
        assert_eq!(t.callback_count(), 1);
        drop(fut);
        assert_eq!(t.callback_count(), 0);
        // Never-polled futures register nothing.
        let never = t.cancelled();
        assert_eq!(t.callback_count(), 0);
        drop(never);
        // Cancelled while pending: removed by cancel, resolves on next poll.
        let mut fut = t.cancelled();
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        t.cancel("x");
        assert_eq!(t.callback_count(), 0);
        assert_eq!(
            Pin::new(&mut fut).poll(&mut cx),
            Poll::Ready(Arc::from("x"))
        );
    }

    #[test]
    fn wide_tree_100k() {
        let root = CancellationToken::new();
        let children: Vec<_> = (0..100_000).map(|_| root.child()).collect();
        assert_eq!(root.child_count(), 100_000);
        assert!(root.cancel("wide"));
        assert!(children.iter().all(|c| c.is_cancelled()));
        assert_eq!(root.child_count(), 0);
        drop(children);

        // Dropped root first, without cancel.
        let root = CancellationToken::new();
        let children: Vec<_> = (0..100_000).map(|_| root.child()).collect();
        drop(root);
        drop(children);
    }

    fn chain(depth: usize) -> Vec<CancellationToken> {
        let mut tokens = vec![CancellationToken::new()];
        for _ in 1..depth {
            let next = tokens[tokens.len() - 1].child();
            tokens.push(next);
        }
        tokens
    }

    #[test]
    fn deep_chain_100k_cancel_then_drop_forward() {
        let tokens = chain(100_000);
        assert!(tokens[0].cancel("deep"));
        assert_eq!(tokens[99_999].reason().as_deref(), Some("deep"));
        drop(tokens);
    }

    #[test]
    fn deep_chain_100k_cancel_then_drop_reverse() {
        let mut tokens = chain(100_000);
        assert!(tokens[0].cancel("deep"));
        assert!(tokens.iter().all(|t| t.is_cancelled()));
        while tokens.pop().is_some() {}
    }

    #[test]
    fn deep_chain_100k_drop_without_cancel() {
        drop(chain(100_000));
        let mut tokens = chain(100_000);
        while tokens.pop().is_some() {}
        // Dropping all but the ends: the leaf ends up a direct child of the root.
        let mut tokens = chain(100_000);
        let leaf = tokens.pop().unwrap();
        let root = tokens.remove(0);
        drop(tokens);
        assert_eq!(root.child_count(), 1);
        root.cancel("x");
        assert!(leaf.is_cancelled());
    }

    #[test]
    fn stress_cancel_vs_child_vs_drop() {
        for i in 0..2_000 {
            let root = CancellationToken::new();
            let middle = root.child();
            let leaf = middle.child();
            let barrier = Barrier::new(3);
            let (late_children, middle_children) = thread::scope(|s| {
                s.spawn(|| {
                    barrier.wait();
                    assert!(root.cancel("stress"));
                });
                let creator = s.spawn(|| {
                    barrier.wait();
                    let late: Vec<_> = (0..4).map(|_| root.child()).collect();
                    (late, leaf.child())
                });
                let dropper = s.spawn(|| {
                    barrier.wait();
                    let m = middle.child();
                    drop(middle);
                    m
                });
                let (late, from_leaf) = creator.join().unwrap();
                (late, vec![dropper.join().unwrap(), from_leaf])
            });
            for t in late_children.iter().chain(&middle_children).chain([&leaf]) {
                assert_eq!(t.reason().as_deref(), Some("stress"), "iteration {i}");
            }
            assert_eq!(root.child_count(), 0);
        }
    }

    #[test]
    fn stress_concurrent_drops_leave_no_children() {
        let root = CancellationToken::new();
        for _ in 0..500 {
            let a = root.child();
            let b = a.child();
            let c = b.child();
            thread::scope(|s| {
                s.spawn(move || drop(a));
                s.spawn(move || drop(b));
                s.spawn(move || drop(c));
            });
            assert_eq!(root.child_count(), 0);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    /// `loom::future::block_on` needs loom's `futures` feature; this is the same thing built
    /// on `loom::sync::Notify` (spurious wake-ups allowed, hence the re-poll loop).
    fn block_on<F: Future>(fut: F) -> F::Output {
        struct NotifyWaker(loom::sync::Notify);
        impl std::task::Wake for NotifyWaker {
            fn wake(self: Arc<Self>) {
                self.0.notify();
            }
        }
        let notify = Arc::new(NotifyWaker(loom::sync::Notify::new()));
        let waker = Waker::from(Arc::clone(&notify));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            notify.0.wait();
        }
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    #[test]
    fn loom_cancel_vs_child() {
        model(|| {
            let root = CancellationToken::new();
            let r = root.clone();
            let th = thread::spawn(move || assert!(r.cancel("a")));
            let child = root.child();
            th.join().unwrap();
            assert_eq!(child.reason().as_deref(), Some("a"));
        });
    }

    #[test]
    fn loom_cancel_vs_on_cancel() {
        model(|| {
            let token = CancellationToken::new();
            let count = sync::Arc::new(AtomicUsize::new(0));
            let t = token.clone();
            let th = thread::spawn(move || t.cancel("a"));
            let c = sync::Arc::clone(&count);
            let guard = token.on_cancel(move |reason| {
                assert_eq!(reason, "a");
                c.fetch_add(1, Ordering::SeqCst);
            });
            th.join().unwrap();
            drop(guard);
            assert_eq!(count.load(Ordering::SeqCst), 1);
            assert_eq!(token.callback_count(), 0);
        });
    }

    /// A child task's link: registered and later run exactly once, or refused with the
    /// reason (the child is then born cancelled) — never registered after the cancel.
    #[test]
    fn loom_cancel_vs_on_cancel_unless_cancelled() {
        model(|| {
            let token = CancellationToken::new();
            let count = sync::Arc::new(AtomicUsize::new(0));
            let t = token.clone();
            let th = thread::spawn(move || t.cancel("a"));
            let c = sync::Arc::clone(&count);
            let linked = token.on_cancel_unless_cancelled(move |reason| {
                assert_eq!(reason, "a");
                c.fetch_add(1, Ordering::SeqCst);
            });
            th.join().unwrap();
            match linked {
                Ok(guard) => {
                    assert_eq!(count.load(Ordering::SeqCst), 1);
                    drop(guard);
                }
                Err(reason) => {
                    assert_eq!(&*reason, "a");
                    assert_eq!(count.load(Ordering::SeqCst), 0);
                }
            }
            assert_eq!(token.callback_count(), 0);
        });
    }

    #[test]
    fn loom_cancel_vs_guard_drop() {
        model(|| {
            let token = CancellationToken::new();
            let count = sync::Arc::new(AtomicUsize::new(0));
            let c = sync::Arc::clone(&count);
            let guard = token.on_cancel(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            });
            let th = thread::spawn(move || drop(guard));
            token.cancel("a");
            th.join().unwrap();
            assert!(count.load(Ordering::SeqCst) <= 1);
            assert_eq!(token.callback_count(), 0);
        });
    }

    #[test]
    fn loom_cancel_vs_poll() {
        model(|| {
            let token = CancellationToken::new();
            let t = token.clone();
            let th = thread::spawn(move || t.cancel("a"));
            let reason = block_on(token.cancelled());
            assert_eq!(&*reason, "a");
            th.join().unwrap();
            assert_eq!(token.callback_count(), 0);
        });
    }

    #[test]
    fn loom_cancel_vs_drop_middle() {
        model(|| {
            let root = CancellationToken::new();
            let middle = root.child();
            let leaf = middle.child();
            let th = thread::spawn(move || drop(middle));
            root.cancel("a");
            th.join().unwrap();
            assert_eq!(leaf.reason().as_deref(), Some("a"));
            assert_eq!(root.child_count(), 0);
        });
    }

    #[test]
    fn loom_cancel_vs_drop_middle_vs_new_grandchild() {
        model(|| {
            let root = CancellationToken::new();
            let middle = root.child();
            let leaf = middle.child();
            let l = leaf.clone();
            let dropper = thread::spawn(move || drop(middle));
            let creator = thread::spawn(move || l.child());
            root.cancel("a");
            dropper.join().unwrap();
            let late = creator.join().unwrap();
            assert_eq!(leaf.reason().as_deref(), Some("a"));
            assert_eq!(late.reason().as_deref(), Some("a"));
        });
    }

    #[test]
    fn loom_cancel_root_vs_cancel_child() {
        model(|| {
            let root = CancellationToken::new();
            let child = root.child();
            let grandchild = child.child();
            let c = child.clone();
            let th = thread::spawn(move || c.cancel("child"));
            assert!(root.cancel("root"));
            // The child's own cancel wins iff it ran first; its reason tells which.
            let expected = if th.join().unwrap() { "child" } else { "root" };
            assert_eq!(child.reason().as_deref(), Some(expected));
            assert_eq!(grandchild.reason().as_deref(), Some(expected));
        });
    }
}
