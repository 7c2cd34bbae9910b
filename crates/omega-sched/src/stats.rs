//! Statistics: the [`Stats`] snapshot and the duration [`Histogram`] behind its percentiles.
//!
//! Counters are cumulative and exact: they are updated under the scheduler's core lock at the
//! same moment as the state change they count.

use std::time::Duration;

use crate::lock::LockTotals;

/// Sub-buckets per power of two: percentiles are exact to within 1/16 (6.25 %).
const SUB: u32 = 16;
const SUB_BITS: u32 = 4;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB as usize;

/// A log-linear histogram of durations in microseconds (HDR-style, 16 sub-buckets per
/// power of two). Constant memory; `record` is O(1).
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max_us: u64,
    sum_us: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.summary().fmt(f)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max_us: 0,
            sum_us: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) as u32 & (SUB - 1);
    ((shift + 1) * SUB + sub) as usize
}

fn upper_bound_of(bucket: usize) -> u64 {
    let b = bucket as u32;
    if b < SUB {
        return b as u64;
    }
    let shift = b / SUB - 1;
    let sub = (b % SUB) as u128;
    let bound = ((SUB as u128 + sub + 1) << shift) - 1;
    bound.min(u64::MAX as u128) as u64
}

impl Histogram {
    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.counts[bucket_of(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
        self.sum_us += us as u128;
    }

    /// Number of recorded durations.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0.0..=1.0), as the upper bound of its bucket, capped at
    /// the maximum seen. Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(upper_bound_of(i).min(self.max_us));
            }
        }
        Duration::from_micros(self.max_us)
    }

    /// Count, mean, p50, p99 and max.
    pub fn summary(&self) -> HistogramSummary {
        HistogramSummary {
            count: self.total,
            mean: if self.total == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros((self.sum_us / self.total as u128) as u64)
            },
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            max: Duration::from_micros(self.max_us),
        }
    }
}

/// Percentiles of a [`Histogram`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramSummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean: Duration,
    /// Median (bucket upper bound, within 6.25 %).
    pub p50: Duration,
    /// 99th percentile (bucket upper bound, within 6.25 %).
    pub p99: Duration,
    /// Largest sample (exact, to the microsecond).
    pub max: Duration,
}

/// One pool's figures, in [`Stats::pools`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// The pool's name (`"llm"` for the built-in one).
    pub name: String,
    /// Permits in all (`usize::MAX` when unbounded).
    pub capacity: usize,
    /// Permits held now.
    pub in_use: usize,
    /// Acquires waiting now.
    pub waiting: usize,
    /// Permits granted since the pool was made.
    pub total_acquisitions: u64,
    /// The most permits ever held at once.
    pub peak_in_use: usize,
    /// Time from acquire to grant.
    pub wait_time: HistogramSummary,
}

/// A snapshot of the scheduler's counts, from [`Scheduler::stats`](crate::Scheduler::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tasks submitted and not yet admitted.
    pub pending: usize,
    /// Admitted tasks ready to run or running.
    pub running: usize,
    /// Admitted tasks waiting on something.
    pub suspended: usize,
    /// Tasks that finished with a value (cumulative).
    pub completed: u64,
    /// Tasks that ended cancelled (cumulative).
    pub cancelled: u64,
    /// Tasks whose body returned an error or panicked (cumulative; panics also in `panicked`).
    pub failed: u64,
    /// Tasks whose body panicked (cumulative).
    pub panicked: u64,
    /// Tasks that timed out (cumulative).
    pub timed_out: u64,
    /// Tasks ever submitted.
    pub submitted: u64,
    /// The most tasks admitted at once (slots in use, borrowed slots not counted twice).
    pub peak_admitted: usize,
    /// Permits of the `"llm"` pool held now: LLM calls in flight.
    pub llm_in_flight: usize,
    /// Every pool, the built-in `"llm"` pool first.
    pub pools: Vec<PoolStats>,
    /// Time from submission to admission.
    pub queue_wait: HistogramSummary,
    /// Time from admission to the end.
    pub run_time: HistogramSummary,
    /// Lock manager totals (SPEC §4); per-resource figures: `Scheduler::lock_stats`.
    pub locks: LockTotals,
}

impl Stats {
    /// Tasks not finished yet: pending + running + suspended.
    pub fn live(&self) -> usize {
        self.pending + self.running + self.suspended
    }

    /// Tasks finished, however they ended.
    pub fn finished(&self) -> u64 {
        self.completed + self.cancelled + self.failed + self.timed_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounds_contain_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket order broke at {v}");
            assert!(b < BUCKETS);
            last = b;
            assert!(upper_bound_of(b) >= v, "{v} above its bucket bound");
        }
    }

    #[test]
    fn quantiles_within_resolution() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.max, Duration::from_millis(100));
        let p50 = s.p50.as_micros() as f64;
        assert!((50_000.0..=50_000.0 * 1.0625).contains(&p50), "{p50}");
        let p99 = s.p99.as_micros() as f64;
        assert!((99_000.0..=100_000.0).contains(&p99), "{p99}");
        assert_eq!(s.mean, Duration::from_micros(50_500));
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }
}
