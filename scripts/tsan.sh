#!/usr/bin/env bash
# Runs pilfer's test suite under ThreadSanitizer (nightly, rebuilding std).
#
#   scripts/tsan.sh               # all integration and unit tests
#   scripts/tsan.sh --test join   # one test file
#
# Suppressions (scripts/tsan.supp), and why: in crossbeam-deque's Chase-Lev
# deque a stealer reads a buffer slot before it claims the slot with a
# compare-exchange, and throws the value away if it loses; the owner may be
# writing that slot at the same time. That read is racy by design (and the
# deque also orders its accesses with stand-alone fences, which TSan does not
# model), so races inside the deque's buffer are suppressed, and nothing else.
# pilfer's own data (job closures and results, task results, scope panics)
# is handed over through Release/Acquire operations, which TSan does model:
# races on it are reported.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "tsan.sh: no nightly toolchain; install it with: rustup toolchain install nightly" >&2
    exit 1
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "tsan.sh: installing rust-src for -Zbuild-std" >&2
    if ! rustup component add rust-src --toolchain nightly; then
        echo "tsan.sh: rust-src is not available here and could not be installed; nothing was checked" >&2
        exit 1
    fi
fi

target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp halt_on_error=1 second_deadlock_stack=1"
# Tests shrink what a sanitizer cannot take (TSan's shadow call stack is too
# small for the 10 000-deep join chains of tests/join.rs).
export PILFER_SANITIZER=thread
# Separate target directory: sanitized and plain builds do not mix.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/tsan}"
# One test at a time per binary: several tests' pools (some with 512 MiB
# stacks for deep recursion) at once exhaust TSan's shadow memory and end in
# a SEGV inside TSan itself. Each test still runs all of its own threads.
cargo +nightly test -Zbuild-std --target "$target" --tests "$@" -- --test-threads=1
