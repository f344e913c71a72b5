#!/usr/bin/env bash
# Runs the torture test (or other tests) under AddressSanitizer, with
# LeakSanitizer checking at exit (nightly, rebuilding std instrumented).
#
#   scripts/asan.sh                              # tests/torture.rs, a few seconds
#   PILFER_TORTURE_SECS=600 scripts/asan.sh      # a torture soak of 10 minutes
#   scripts/asan.sh --test join                  # other tests (any `cargo test` arguments)
#
# The build is `--release` with debug assertions on (in pilfer and in the
# rebuilt std: its UB checks too) and line tables, so that reports name
# source lines; its target directory is target/asan.
#
# What a report looks like: ASan prints the bad access (heap/stack
# overflow, use after free, ...) with the stacks of the access, the
# allocation and the free, and exits with an error; a SIGSEGV is reported
# the same way (ASan's handler), with the faulting thread's stack.
# LeakSanitizer runs when the process exits and reports every heap block
# that nothing reachable points to.
#
# Suppressions (scripts/lsan.supp), and why: none of pilfer's memory is
# expected to leak, but LSan cannot see a thread that is still running at
# exit if its kernel thread id was used before by a finished thread of the
# process (ASan keeps joined threads in its registry; ids wrap at
# /proc/sys/kernel/pid_max). In the torture test those threads are the
# global pool's spares, and the file names exactly what such a spare holds
# (its boxed thread closure, its join-frame stack, glibc's list of its TLS
# destructors), with the reasoning. LSan prints how often each suppression
# matched; this script checks the counts against each other (every frame
# stack and TLS node must come with a spare's thread closure) and fails the
# run otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/nightly.sh
source "scripts/nightly.sh"
need_nightly asan.sh rust-src
target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
case "$target" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
    *)
        echo "asan.sh: AddressSanitizer with LeakSanitizer is not supported by rustc on $target; nothing was checked" >&2
        exit 1
        ;;
esac

export RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes"
export RUSTDOCFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes"
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
# halt_on_error: the first bad access ends the run (with its report).
# detect_leaks: LeakSanitizer at exit (the default on Linux, made explicit).
# detect_stack_use_after_return: frames live on a heap of their own, so that
# a pointer into a returned frame is caught too.
# The caller's ASAN_OPTIONS and LSAN_OPTIONS come last, so they win (say,
# ASAN_OPTIONS=disable_coredump=0:abort_on_error=1 for a core file).
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=1:report_objects=1${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# PILFER_SANITIZER (set by tsan.sh) is left unset: the tests it shrinks
# (tests/join.rs, 10 000 nested joins) pass under ASan at full depth, and
# the torture test does not read it.
# Separate target directory: sanitized and plain builds do not mix.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/asan}"

if [ $# -eq 0 ]; then
    echo "asan.sh: tests/torture.rs for ${PILFER_TORTURE_SECS:-3} s (PILFER_TORTURE_SECS)" >&2
    set -- --test torture -- --nocapture
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo +nightly test -Zbuild-std --target "$target" --release "$@" 2>&1 | tee "$log" || status=$?

# LSan's table of the suppressions used, one per test binary:
#   Suppressions used:
#     count      bytes template
#         2        176 std::thread::lifecycle::spawn_unchecked::{closure_env#1}<...
if ! awk '
    /^Suppressions used:/ { table = 1; closures = frames = tls = 0; next }
    table && /^-+$/ {
        table = 0
        if (frames > closures || tls > 4 * closures) {
            printf "asan.sh: LSan suppressed %d frame stacks and %d TLS nodes but only %d spare threads: " \
                "not all of it is what an unseen live spare holds (scripts/lsan.supp)\n", frames, tls, closures
            wrong = 1
        }
        next
    }
    table && $1 ~ /^[0-9]+$/ {
        if ($0 ~ /start_spare/) closures += $1
        else if ($0 ~ /frames\.rs/) frames += $1
        else if ($0 ~ /__cxa_thread_atexit_impl/) tls += $1
    }
    END { exit wrong }
' "$log" >&2; then
    status=1
fi
exit "$status"
