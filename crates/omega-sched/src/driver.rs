//! [`DriverHandle`]: a scheduler driven by a thread of its own.
//!
//! # Implementation details
//!
//! The thread runs a current-thread tokio runtime (timers and I/O enabled) whose one job
//! is the scheduler's driver, around a small command queue: closures sent from any thread
//! run on the driver thread between turns, inside the driver (so they may
//! `submit_local`). The thread ends once the scheduler is shut down and no task is left;
//! shutdown is asked by [`DriverHandle::shutdown`], by dropping the `DriverHandle`, or by
//! [`Scheduler::shutdown`]. Closures still queued then are dropped unrun (their callers get
//! [`DriverGone`]).

use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::Poll;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::executor::{Driver, Shared};
use crate::handle::TaskHandle;
use crate::scheduler::Scheduler;
use crate::task::TaskOptions;

type Command = Box<dyn FnOnce() + Send>;

/// Closures waiting for the driver thread.
#[derive(Default)]
struct Commands {
    queue: Mutex<Vec<Command>>,
    /// Set when the thread stops taking commands.
    closed: std::sync::atomic::AtomicBool,
}

/// The driver thread is gone (it ended after shutdown), so the closure did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the scheduler's driver thread has ended")]
pub struct DriverGone;

/// A scheduler with its own driver thread: a current-thread tokio runtime that drives it
/// until shutdown. Every other thread holds only `Send + Sync` handles: the
/// [`Scheduler`] (submit `Send` futures, cancel, inspect) and this handle, which also
/// runs closures on the driver thread — the way to create `!Send` work there.
///
/// ```
/// use omega_sched::{Scheduler, TaskOptions};
///
/// let driver = Scheduler::builder().max_concurrent_tasks(4).spawn_driver().unwrap();
/// // A `!Send` future, created on the driver thread by a `Send` closure.
/// let h = driver
///     .spawn_local_with(|| { let rc = std::rc::Rc::new(20); async move { *rc + 1 } },
///                       TaskOptions::new())
///     .unwrap();
/// let sched = driver.scheduler().clone();
/// let sum = std::thread::spawn(move || {
///     let other = sched.submit(async { 21 }, TaskOptions::new());
///     futures::executor::block_on(async { h.await.unwrap() + other.await.unwrap() })
/// }).join().unwrap();
/// assert_eq!(sum, 42);
/// driver.shutdown("done").unwrap();
/// ```
#[derive(Debug)]
pub struct DriverHandle {
    sched: Scheduler,
    commands: Arc<CommandsRef>,
    thread: Option<JoinHandle<()>>,
}

/// `Commands` with a `Debug` that says nothing.
#[derive(Default)]
struct CommandsRef(Commands);

impl std::fmt::Debug for CommandsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands")
            .field("queued", &self.0.queue.lock().len())
            .finish()
    }
}

impl DriverHandle {
    /// Starts the driver thread of `sched`.
    pub(crate) fn start(sched: Scheduler) -> std::io::Result<Self> {
        let commands = Arc::new(CommandsRef::default());
        let shared = sched.shared.clone();
        let cmds = commands.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("omega-sched-{}", shared.id))
            .spawn(move || drive(rt, shared, cmds))?;
        Ok(DriverHandle {
            sched,
            commands,
            thread: Some(thread),
        })
    }

    /// The scheduler this thread drives.
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    fn send(&self, c: Command) -> Result<(), DriverGone> {
        let cmds = &self.commands.0;
        let mut q = cmds.queue.lock();
        if cmds.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(DriverGone);
        }
        q.push(c);
        drop(q);
        self.sched.shared.inbox.driver.wake();
        Ok(())
    }

    /// Runs `f` on the driver thread, inside the driver (it may `submit_local` and read
    /// `!Send` state kept there), and waits for its result. Blocks the calling thread; from
    /// async code use [`call`](Self::call). Called on the driver thread itself, it runs `f`
    /// at once.
    pub fn run<R, F>(&self, f: F) -> Result<R, DriverGone>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.sched.is_driven_here() {
            // Called from the driver thread itself (a task, a command): waiting for the
            // driver would wait for ourselves.
            return Ok(f());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        rx.recv().map_err(|_| DriverGone)
    }

    /// [`run`](Self::run) for async callers: the result arrives without blocking.
    pub async fn call<R, F>(&self, f: F) -> Result<R, DriverGone>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.sched.is_driven_here() {
            return Ok(f());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        rx.await.map_err(|_| DriverGone)
    }

    /// Submits a task whose `!Send` future is created on the driver thread by `make` (a
    /// `Send` closure): the way to run `!Send` work (a Lisp evaluation) from any thread.
    /// Waits until the driver thread has created it; the handle is `Send` when the output is.
    pub fn spawn_local_with<F, Fut>(
        &self,
        make: F,
        opts: TaskOptions,
    ) -> Result<TaskHandle<Fut::Output>, DriverGone>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let sched = self.sched.clone();
        self.run(move || sched.submit_local(make(), opts))
    }

    /// True once the driver thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Shuts the scheduler down (see [`Scheduler::shutdown`]) and waits for the driver
    /// thread to end: every task ended, shielded cleanups given up to `cleanup_grace`,
    /// every body dropped on the driver thread, every lock and permit released.
    /// `Err` carries the driver thread's panic, if it panicked.
    pub fn shutdown(mut self, reason: &str) -> std::thread::Result<()> {
        self.sched.shutdown(reason);
        match self.thread.take() {
            Some(t) => t.join(),
            None => Ok(()),
        }
    }
}

impl Drop for DriverHandle {
    /// Asks for shutdown without waiting: the thread ends on its own once every task has
    /// ended (within `cleanup_grace`).
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.sched.shutdown("driver handle dropped");
        }
    }
}

/// Closes the command queue when the driver thread ends, however it ends: callers waiting
/// on a closure get [`DriverGone`] instead of waiting forever.
struct CloseOnExit(Arc<CommandsRef>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        let unrun = {
            let mut q = self.0 .0.queue.lock();
            self.0
                 .0
                .closed
                .store(true, std::sync::atomic::Ordering::Release);
            std::mem::take(&mut *q)
        };
        // Unrun closures are dropped here, on the driver thread.
        drop(unrun);
    }
}

/// The driver thread's body.
fn drive(rt: tokio::runtime::Runtime, shared: Arc<Shared>, cmds: Arc<CommandsRef>) {
    let _close = CloseOnExit(cmds.clone());
    let mut driver = Driver::new(shared.clone());
    let batch = StdMutex::new(Vec::new());
    let work = std::future::poll_fn(|_| {
        let mut b = batch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.append(&mut cmds.0.queue.lock());
        for c in b.drain(..) {
            // A panicking command must not take the driver (and every task) down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(c));
        }
        if shared.is_closed() && shared.lock_core().live() == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let mut work = std::pin::pin!(work);
    rt.block_on(std::future::poll_fn(|cx| {
        let r = driver.poll_with(cx, work.as_mut());
        if r.is_pending() && shared.is_closed() && shared.lock_core().live() == 0 {
            // The last task ended in this turn: look at `work` again.
            cx.waker().wake_by_ref();
        }
        r
    }));
    drop(driver);
    drop(rt);
}
