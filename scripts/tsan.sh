#!/usr/bin/env bash
# Runs pilfer's test suite under ThreadSanitizer (nightly, rebuilding std).
#
#   scripts/tsan.sh               # all integration and unit tests
#   scripts/tsan.sh --test join   # one test file
#
# Suppressions (scripts/tsan.supp), and why: ThreadSanitizer does not model
# stand-alone atomic fences. crossbeam-deque's Chase-Lev deque orders its
# buffer accesses with fences (`fence(SeqCst)` in `pop`/`steal`, Release
# fences in `push`), so TSan reports races on the buffer slots that cannot
# happen; those reports are suppressed for crossbeam's deque only. pilfer's
# own data (job closures and results, task results, scope panics) is handed
# over through Release/Acquire operations, which TSan does model: races on
# it are not suppressed.
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
# Separate target directory: sanitized and plain builds do not mix.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/tsan}"
cargo +nightly test -Zbuild-std --target "$target" --tests "$@"
