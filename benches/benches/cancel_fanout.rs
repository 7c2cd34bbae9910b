//! Cancellation tokens with 100k children (SPEC §3.7, §9): omega's
//! [`CancellationToken`] beside `tokio_util::sync::CancellationToken`.
//!
//! * `cancel_fanout/{omega_token, tokio_util_token}` — time one `cancel` of a root whose
//!   100k children were created in the (untimed) setup; the tree is dropped untimed too.
//! * `token_children/{omega_token, tokio_util_token}` — time creating the 100k children of
//!   a fresh root (the root and the vector that keeps the children alive are set up
//!   untimed; the children are dropped untimed).

mod common;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use omega_sched::CancellationToken;
use tokio_util::sync::CancellationToken as TokioToken;

/// Children per root.
const N: usize = 100_000;

/// An omega root with `n` live children.
fn omega_tree(n: usize) -> (CancellationToken, Vec<CancellationToken>) {
    let root = CancellationToken::new();
    let kids = (0..n).map(|_| root.child()).collect();
    (root, kids)
}

/// A tokio-util root with `n` live children.
fn tokio_tree(n: usize) -> (TokioToken, Vec<TokioToken>) {
    let root = TokioToken::new();
    let kids = (0..n).map(|_| root.child_token()).collect();
    (root, kids)
}

fn cancel_fanout(c: &mut Criterion) {
    // Sanity checks (untimed): a cancel reaches every child.
    let (root, kids) = omega_tree(1_000);
    root.cancel("bench");
    assert!(kids.iter().all(CancellationToken::is_cancelled));
    let (root, kids) = tokio_tree(1_000);
    root.cancel();
    assert!(kids.iter().all(TokioToken::is_cancelled));

    let mut group = c.benchmark_group("cancel_fanout");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(BenchmarkId::from_parameter("omega_token"), |b| {
        b.iter_batched(
            || omega_tree(N),
            |tree| {
                tree.0.cancel("bench");
                tree
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::from_parameter("tokio_util_token"), |b| {
        b.iter_batched(
            || tokio_tree(N),
            |tree| {
                tree.0.cancel();
                tree
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn token_children(c: &mut Criterion) {
    let mut group = c.benchmark_group("token_children");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(BenchmarkId::from_parameter("omega_token"), |b| {
        b.iter_batched(
            || (CancellationToken::new(), Vec::with_capacity(N)),
            |(root, mut kids)| {
                kids.extend((0..N).map(|_| root.child()));
                (root, kids)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::from_parameter("tokio_util_token"), |b| {
        b.iter_batched(
            || (TokioToken::new(), Vec::with_capacity(N)),
            |(root, mut kids)| {
                kids.extend((0..N).map(|_| root.child_token()));
                (root, kids)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Criterion's entry point (what `criterion_group!` and `criterion_main!` would generate,
/// written out so that no undocumented public item is needed): small samples so that the
/// whole suite runs in a few minutes; command-line options still override them.
fn main() {
    let mut c = common::criterion(2);
    cancel_fanout(&mut c);
    token_children(&mut c);
    c.final_summary();
}
