#!/usr/bin/env bash
# Runs pilfer's test suite under ThreadSanitizer (nightly, rebuilding std).
#
#   scripts/tsan.sh                                     # all integration and unit tests
#   scripts/tsan.sh --test join                         # one test file
#   scripts/tsan.sh --torture                           # tests/torture.rs, a few seconds
#   PILFER_TORTURE_SECS=600 scripts/tsan.sh --torture   # a torture soak of 10 minutes
#   scripts/tsan.sh --torture --release                 # ... optimized (a build of its own)
#
# The torture mode runs the one test of tests/torture.rs with its output
# shown (seed, rounds, operations), `PILFER_TORTURE_SECS` long; without
# `--release` it shares the suite's build (target/tsan, debug).
#
# Suppressions (scripts/tsan.supp), and why: in crossbeam-deque's Chase-Lev
# deque a stealer reads a buffer slot before it claims the slot with a
# compare-exchange, and throws the value away if it loses; the owner may be
# writing that slot at the same time. That read is racy by design (and the
# deque also orders its accesses with stand-alone fences, which TSan does not
# model), so races inside the deque's buffer are suppressed, and no other
# race. pilfer's own data (job closures and results, task results, scope
# panics) is handed over through Release/Acquire operations, which TSan does
# model: races on it are reported. Besides, the "thread leak" of a spare
# worker is suppressed: the global pool, never shut down, still holds the
# handles of its spares that exited after their keep-alive when the process
# ends (tsan.supp says when such handles are dropped).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/nightly.sh
source "scripts/nightly.sh"
need_nightly tsan.sh rust-src

target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
# Options of the caller's TSAN_OPTIONS come last, so they win (say,
# `disable_coredump=0 abort_on_error=1` for a core file on a report).
export TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
# Tests shrink what a sanitizer cannot take (TSan's shadow call stack is too
# small for the 10 000-deep join chains of tests/join.rs).
export PILFER_SANITIZER=thread
# Separate target directory: sanitized and plain builds do not mix.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/tsan}"
# Line tables in a `--release` build too, so that reports name source lines.
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-line-tables-only}"

if [ "${1:-}" = "--torture" ]; then
    shift
    echo "tsan.sh: tests/torture.rs for ${PILFER_TORTURE_SECS:-3} s (PILFER_TORTURE_SECS)" >&2
    # One test, so nothing shares TSan's memory with it (about 1 GiB at its
    # peak in a minute's run, in release).
    exec cargo +nightly test -Zbuild-std --target "$target" --test torture "$@" -- --nocapture
fi
# All test targets, unless the arguments pick some (`--tests` beside a
# `--test` would add every other test file again).
if [ $# -eq 0 ]; then
    set -- --tests
fi
# One test at a time per binary: several tests' pools (some with 512 MiB
# stacks for deep recursion) at once exhaust TSan's shadow memory and end in
# a SEGV inside TSan itself. Each test still runs all of its own threads.
cargo +nightly test -Zbuild-std --target "$target" "$@" -- --test-threads=1
