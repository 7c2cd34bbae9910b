//! The acquisition futures: [`Acquire`] (one resource) and [`AcquireAll`] (a batch). Each
//! is a builder first (`.timeout`, `.owner`, `.ttl`) and a future once awaited.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use smallvec::SmallVec;
use tokio::time::{Instant, Sleep};

use crate::context::{cancel_poll, current_priority, current_task};

use super::error::LockError;
use super::guard::LockGuard;
use super::manager::{Check, LockManager, Start};
use super::state::{Grants, Items, Req, WaiterKey};
use super::types::OwnerId;

#[derive(Debug)]
enum Phase {
    Init,
    Waiting {
        key: WaiterKey,
        owner: OwnerId,
        deadline: Option<Pin<Box<Sleep>>>,
        lease: Option<Pin<Box<Sleep>>>,
    },
    Done,
}

/// The shared machinery of both futures.
#[derive(Debug)]
struct Request {
    mgr: LockManager,
    items: Items,
    owner: Option<OwnerId>,
    timeout: Option<Duration>,
    ttl: Option<Duration>,
    phase: Phase,
}

impl Request {
    fn first(&self) -> Arc<str> {
        self.items
            .first()
            .map(|i| i.0.clone())
            .unwrap_or_else(|| "".into())
    }

    fn req(&self) -> Result<Req, LockError> {
        let owner = match self
            .owner
            .clone()
            .or_else(|| current_task().map(OwnerId::Task))
        {
            Some(o) => o,
            None => {
                return Err(LockError::NoOwner {
                    resource: self.first(),
                })
            }
        };
        Ok(Req {
            items: self.items.clone(),
            owner,
            task: current_task(),
            priority: current_priority(),
            ttl: self.ttl,
        })
    }

    fn try_now(&self) -> Result<SmallVec<[LockGuard; 1]>, LockError> {
        let req = self.req()?;
        let owner = req.owner.clone();
        self.mgr.try_grant(req).map(|g| self.mgr.guards(&owner, g))
    }

    /// Leaves the queue if waiting (a grant received meanwhile is handed on).
    fn leave(&mut self) {
        if let Phase::Waiting { key, .. } = std::mem::replace(&mut self.phase, Phase::Done) {
            self.mgr.leave(key);
        }
    }

    fn done(
        &mut self,
        owner: &OwnerId,
        g: Grants,
    ) -> Poll<Result<SmallVec<[LockGuard; 1]>, LockError>> {
        self.phase = Phase::Done;
        Poll::Ready(Ok(self.mgr.guards(owner, g)))
    }

    fn poll_inner(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<SmallVec<[LockGuard; 1]>, LockError>> {
        match cancel_poll::<()>() {
            Some(Poll::Ready(Err(c))) => {
                self.leave();
                return Poll::Ready(Err(LockError::Cancelled {
                    resource: self.first(),
                    reason: c.reason,
                }));
            }
            Some(_) => return Poll::Pending,
            None => {}
        }
        if let Phase::Init = self.phase {
            let req = match self.req() {
                Ok(r) => r,
                Err(e) => {
                    self.phase = Phase::Done;
                    return Poll::Ready(Err(e));
                }
            };
            let owner = req.owner.clone();
            match self.mgr.start(req, cx.waker()) {
                Start::Granted(g) => return self.done(&owner, g),
                Start::Failed(e) => {
                    self.phase = Phase::Done;
                    return Poll::Ready(Err(e));
                }
                Start::Waiting(key) => {
                    self.phase = Phase::Waiting {
                        key,
                        owner,
                        deadline: self.timeout.map(|d| Box::pin(tokio::time::sleep(d))),
                        lease: None,
                    };
                }
            }
        }
        // Bounded: each round either finishes or re-arms a timer that is not due yet.
        for _ in 0..8 {
            let Phase::Waiting {
                key,
                owner,
                deadline,
                lease,
            } = &mut self.phase
            else {
                panic!("an Acquire must not be polled after it completed");
            };
            let (key, owner) = (*key, owner.clone());
            let next_expiry = match self.mgr.check(key, cx.waker()) {
                Check::Granted(g) => return self.done(&owner, g),
                Check::Failed(e) => {
                    self.phase = Phase::Done;
                    return Poll::Ready(Err(e));
                }
                Check::Waiting { next_expiry } => next_expiry,
            };
            if let Some(d) = deadline {
                if d.as_mut().poll(cx).is_ready() {
                    let after = self.timeout.unwrap_or_default();
                    self.phase = Phase::Done;
                    return match self.mgr.time_out(key, after) {
                        Ok(g) => self.done(&owner, g),
                        Err(e) => Poll::Ready(Err(e)),
                    };
                }
            }
            // A lease in the way may expire: wake then, sweep, look again (I9).
            let Some(at) = next_expiry else {
                *lease = None;
                return Poll::Pending;
            };
            match lease {
                Some(s) if s.deadline() == at => {}
                Some(s) => s.as_mut().reset(at),
                None => *lease = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            let fired = lease
                .as_mut()
                .is_some_and(|s| s.as_mut().poll(cx).is_ready());
            if !fired {
                return Poll::Pending;
            }
            self.mgr.sweep();
            if at <= Instant::now() {
                *lease = None;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.leave();
    }
}

macro_rules! builder_methods {
    () => {
        /// Gives up after `d` with [`LockError::Timeout`] (naming a holder and the queue
        /// position at that moment).
        pub fn timeout(mut self, d: Duration) -> Self {
            self.req.timeout = Some(d);
            self
        }

        /// Acquires for `owner` instead of the current task.
        pub fn owner(mut self, owner: impl Into<OwnerId>) -> Self {
            self.req.owner = Some(owner.into());
            self
        }

        /// Grants a lease: after `d` the grant expires and the sweep frees it, unless
        /// renewed ([`LockManager::renew`]).
        pub fn ttl(mut self, d: Duration) -> Self {
            self.req.ttl = Some(d);
            self
        }
    };
}

/// The future of [`LockManager::acquire`]: a [`LockGuard`] or a [`LockError`].
///
/// # Cancellation safety
/// Dropping it (or its task being cancelled) leaves the queue; a grant that arrived
/// meanwhile is released and passes to the next waiter. In a cancelled cooperative task it
/// returns [`LockError::Cancelled`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire {
    req: Request,
}

impl Acquire {
    pub(crate) fn new(mgr: LockManager, items: Items) -> Self {
        Acquire {
            req: Request {
                mgr,
                items,
                owner: None,
                timeout: None,
                ttl: None,
                phase: Phase::Init,
            },
        }
    }

    builder_methods!();

    /// Takes the lock now or fails with [`LockError::Conflict`]; never waits.
    pub fn try_now(self) -> Result<LockGuard, LockError> {
        let mut g = self.req.try_now()?;
        Ok(g.pop().expect("one resource, one guard"))
    }
}

impl Future for Acquire {
    type Output = Result<LockGuard, LockError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.req
            .poll_inner(cx)
            .map(|r| r.map(|mut g| g.pop().expect("one resource, one guard")))
    }
}

/// The future of [`LockManager::acquire_all`]: one guard per distinct name (sorted by
/// name), or a [`LockError`]. Cancellation behaves as for [`Acquire`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireAll {
    req: Request,
}

impl AcquireAll {
    pub(crate) fn new(mgr: LockManager, items: Items) -> Self {
        AcquireAll {
            req: Request {
                mgr,
                items,
                owner: None,
                timeout: None,
                ttl: None,
                phase: Phase::Init,
            },
        }
    }

    builder_methods!();

    /// Takes every lock now or none, failing with [`LockError::Conflict`].
    pub fn try_now(self) -> Result<Vec<LockGuard>, LockError> {
        self.req.try_now().map(SmallVec::into_vec)
    }
}

impl Future for AcquireAll {
    type Output = Result<Vec<LockGuard>, LockError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.req.poll_inner(cx).map(|r| r.map(SmallVec::into_vec))
    }
}
