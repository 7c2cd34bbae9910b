#!/usr/bin/env bash
# loom models of omega-sched's concurrency (issue 9): the core's wake/cancel/finish races on
# the real Core and async-task cells, the inbox protocol, and the cancellation-token tree.
# Built with --cfg loom in a target directory of its own (so the main build cache is kept);
# a few minutes at most on 2 cores, most of it compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== scheduler models (loom)"
RUSTFLAGS="--cfg loom" \
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom" \
  cargo test -p omega-sched --lib --release loom -- --test-threads=2
