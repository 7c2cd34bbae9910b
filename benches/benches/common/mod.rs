//! Set-up shared by every bench target.

use std::time::Duration;

use criterion::Criterion;

/// Criterion as every target here runs it (what `criterion_group!` would build, written out
/// so that no undocumented public item is needed): small samples, 1 s warm-up and
/// `measure_secs` of measurement, so the whole suite runs in a few minutes; command-line
/// options still override all of it.
pub fn criterion(measure_secs: u64) -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measure_secs))
        .configure_from_args()
}
