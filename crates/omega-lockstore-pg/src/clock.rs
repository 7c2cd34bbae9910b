//! [`Clock`]: whose clock decides when a lease expires.
//!
//! In production that is the database server's (`clock_timestamp()`): one clock for every
//! process and host, whatever their own clocks say. Every SQL function takes a `p_now`
//! argument: `NULL` means the server's clock, a value means the caller's.
//!
//! [`Clock::Tokio`] passes tokio's clock instead, so tests can run on a paused clock and
//! assert exact expiries (the store-generic suite does). Virtual time must not run while a
//! request is at the server — the server is outside the virtual world — so each request
//! holds the paused clock still ([`ClockHold`]): tokio does not auto-advance time while a
//! `spawn_blocking` task is alive, and the hold is one such task, parked until the request
//! ends. The hold costs a blocking-pool thread per request in flight: test use only.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Whose clock decides expiries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The database server's clock: one clock for every process. The default, and the only
    /// right choice when several processes share the store.
    #[default]
    Server,
    /// This process's tokio clock (virtual under `start_paused`), for single-process tests:
    /// requests hold a paused clock still while they are at the server.
    Tokio,
}

/// The clock of one store: the choice, and for [`Clock::Tokio`] the epoch that maps tokio
/// instants to timestamps.
#[derive(Debug)]
pub(crate) struct Times {
    clock: Clock,
    epoch: OnceLock<(Instant, SystemTime)>,
}

impl Times {
    pub fn new(clock: Clock) -> Self {
        Times {
            clock,
            epoch: OnceLock::new(),
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The `p_now` argument: `None` (the server decides) or tokio's now as a timestamp.
    pub fn now_param(&self) -> Option<SystemTime> {
        match self.clock {
            Clock::Server => None,
            Clock::Tokio => {
                let (i0, t0) = *self
                    .epoch
                    .get_or_init(|| (Instant::now(), SystemTime::now()));
                Some(t0 + Instant::now().saturating_duration_since(i0))
            }
        }
    }

    /// When a wait should look again for a lease reported to expire `us` microseconds after
    /// the server's answer. The server's clock runs on while the answer travels: a
    /// millisecond of slack keeps the waiter from looking a hair too early.
    pub fn expiry_at(&self, us: i64) -> Instant {
        let d = Duration::from_micros(u64::try_from(us).unwrap_or(0));
        match self.clock {
            Clock::Server => Instant::now() + d + Duration::from_millis(1),
            Clock::Tokio => Instant::now() + d,
        }
    }

    /// Holds a paused tokio clock still until dropped ([`Clock::Tokio`] only).
    pub fn hold(&self) -> Option<ClockHold> {
        match self.clock {
            Clock::Server => None,
            Clock::Tokio => Some(ClockHold::new()),
        }
    }
}

/// While alive, a paused tokio clock does not auto-advance (a `spawn_blocking` task is in
/// flight: tokio inhibits auto-advance until it ends).
#[derive(Debug)]
pub(crate) struct ClockHold {
    _release: std::sync::mpsc::Sender<()>,
}

impl ClockHold {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Returns when the sender is dropped.
        drop(tokio::task::spawn_blocking(move || {
            let _ = rx.recv();
        }));
        ClockHold { _release: tx }
    }
}
