//! Lock statistics: cumulative totals ([`LockTotals`], also in [`Stats::locks`]) and
//! per-resource figures ([`ResourceLockStats`]).
//!
//! Per-resource figures live with the resource's table entry. An entry is removed when the
//! resource is idle (SPEC §4), so to keep the table bounded a resource's counters go with it,
//! except for resources that have seen contention ("hot" ones): their figures are retained
//! for up to [`RETAINED_RESOURCE_STATS`] names (oldest dropped first) and restored when the
//! resource comes back. Totals are cumulative and exact.
//!
//! [`Stats::locks`]: crate::Stats::locks

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::stats::{Histogram, HistogramSummary};

use super::types::LockMode;

/// How many idle hot resources keep their figures.
pub const RETAINED_RESOURCE_STATS: usize = 1024;

/// Cumulative lock figures for the whole manager, plus the current table size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockTotals {
    /// Grants in read mode (re-entrant ones included).
    pub acquisitions_read: u64,
    /// Grants in write mode (re-entrant ones and upgrades included).
    pub acquisitions_write: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    /// Waits that ended by `.timeout(d)`.
    pub timeouts: u64,
    /// Waits refused because they would close a cycle.
    pub deadlocks: u64,
    /// Leases freed by the sweep because their TTL ran out.
    pub expired: u64,
    /// Resources in the table now (held or waited for).
    pub resources: usize,
    /// Holders now (owners, over all resources).
    pub holders: usize,
    /// Waiting acquisitions now.
    pub waiters: usize,
    /// Time from the start of a contended wait to its grant.
    pub wait_time: HistogramSummary,
    /// Time from grant to release.
    pub hold_time: HistogramSummary,
}

/// One resource's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceLockStats {
    /// The resource's name.
    pub name: String,
    /// Grants in read mode.
    pub acquisitions_read: u64,
    /// Grants in write mode.
    pub acquisitions_write: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    /// Waits that timed out.
    pub timeouts: u64,
    /// Waits refused as deadlocks.
    pub deadlocks: u64,
    /// Owners holding it now.
    pub holders: usize,
    /// Acquisitions waiting for it now.
    pub waiters: usize,
    /// Wait time (recorded once the resource has seen contention).
    pub wait_time: HistogramSummary,
    /// Hold time (recorded once the resource has seen contention).
    pub hold_time: HistogramSummary,
}

/// A snapshot of the lock manager's figures, from [`LockManager::stats`].
///
/// [`LockManager::stats`]: crate::LockManager::stats
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockStats {
    /// Totals.
    pub totals: LockTotals,
    /// Resources in the table now, then idle hot resources whose figures are retained;
    /// sorted by name.
    pub resources: Vec<ResourceLockStats>,
}

impl LockStats {
    /// The figures of one resource, if known.
    pub fn resource(&self, name: &str) -> Option<&ResourceLockStats> {
        self.resources.iter().find(|r| r.name == name)
    }
}

/// Counters kept in a resource's entry.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub reads: u64,
    pub writes: u64,
    pub contended: u64,
    pub timeouts: u64,
    pub deadlocks: u64,
    /// Wait and hold histograms, allocated at the first contention.
    pub hist: Option<Box<[Histogram; 2]>>,
}

impl Counters {
    pub fn granted(&mut self, mode: LockMode) {
        match mode {
            LockMode::Read => self.reads += 1,
            LockMode::Write => self.writes += 1,
        }
    }

    pub fn make_hot(&mut self) {
        if self.hist.is_none() {
            self.hist = Some(Box::default());
        }
    }

    pub fn record_wait(&mut self, d: Duration) {
        if let Some(h) = &mut self.hist {
            h[0].record(d);
        }
    }

    pub fn record_hold(&mut self, d: Duration) {
        if let Some(h) = &mut self.hist {
            h[1].record(d);
        }
    }

    pub fn snapshot(&self, name: &str, holders: usize, waiters: usize) -> ResourceLockStats {
        let (w, h) = match &self.hist {
            Some(h) => (h[0].summary(), h[1].summary()),
            None => Default::default(),
        };
        ResourceLockStats {
            name: name.to_string(),
            acquisitions_read: self.reads,
            acquisitions_write: self.writes,
            contended: self.contended,
            timeouts: self.timeouts,
            deadlocks: self.deadlocks,
            holders,
            waiters,
            wait_time: w,
            hold_time: h,
        }
    }
}

/// Manager-wide counters.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub reads: u64,
    pub writes: u64,
    pub contended: u64,
    pub timeouts: u64,
    pub deadlocks: u64,
    pub expired: u64,
    pub wait: Histogram,
    pub hold: Histogram,
}

/// Figures of idle hot resources, bounded FIFO (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Retained {
    map: HashMap<Arc<str>, Counters>,
    order: VecDeque<Arc<str>>,
}

impl Retained {
    pub fn keep(&mut self, name: Arc<str>, c: Counters) {
        if c.hist.is_none() {
            return;
        }
        while self.order.len() >= RETAINED_RESOURCE_STATS {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        if self.map.insert(name.clone(), c).is_none() {
            self.order.push_back(name);
        }
    }

    pub fn take(&mut self, name: &str) -> Option<Counters> {
        if self.map.is_empty() {
            return None;
        }
        let c = self.map.remove(name)?;
        self.order.retain(|n| &**n != name);
        Some(c)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Counters)> {
        self.map.iter()
    }
}
