#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/: reader, expand, eval, eval_async) for a bounded time, ~80 s
# in all, on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its nightly flags).
# The corpora are seeded from lisp-examples/ and the script tests. A crash fails the run; its
# input is in fuzz/artifacts/TARGET/ and becomes a regression test. Leak detection is off:
# a runtime keeps per-thread tables (symbols, the collector registry) for the process, and
# leaks are what the hostile-input tests measure (crates/omega-cli/tests/hostile/cycles.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS_PER_TARGET="${OMEGA_FUZZ_SECS:-20}"
export RUSTC_BOOTSTRAP=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
# The instrumented build takes ~15 min on 2 cores; keep it in a per-machine cache (as the
# real-model step keeps its wheel) so later runs on the same machine only rebuild what changed.
export CARGO_TARGET_DIR="${OMEGA_FUZZ_TARGET_DIR:-$HOME/.cache/omega/fuzz-target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

for t in reader expand eval eval_async; do
  mkdir -p "fuzz/corpus/$t"
  cp lisp-examples/*.lisp "fuzz/corpus/$t/" 2>/dev/null || true
  find crates/omega-lisp/tests/scripts -name '*.lisp' -exec cp {} "fuzz/corpus/$t/" \; 2>/dev/null || true
done

echo "== fuzz build"
cargo fuzz build --fuzz-dir fuzz
for t in reader expand eval eval_async; do
  echo "== fuzz $t (${SECS_PER_TARGET}s)"
  cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECS_PER_TARGET" -rss_limit_mb=2048 -max_len=4096 -timeout=10 \
    -detect_leaks=0 \
    -print_final_stats=1 2>&1 | tail -n 60
done
