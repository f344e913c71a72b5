#!/usr/bin/env bash
# Runs pilfer's shuttle scenarios (shuttle/README.md): the whole pool under
# thousands of randomized (PCT) schedules per scenario.
#
#   scripts/shuttle.sh                  # every scenario (what CI runs)
#   scripts/shuttle.sh FILTER...        # the scenarios whose names match
#   scripts/shuttle.sh --bugs           # compiles in each `pilfer_bug` switch
#                                       # in turn and checks that the
#                                       # scenarios listed for it catch it
#   scripts/shuttle.sh --bugs SWITCH... # those switches only
#
# Environment (all optional): PILFER_SHUTTLE_ITERATIONS (schedules per
# scenario), PILFER_SHUTTLE_SCHEDULER (pct, random, determinism),
# SHUTTLE_RANDOM_SEED, PILFER_SHUTTLE_REPLAY, PILFER_SHUTTLE_SCHEDULE_DIR,
# PILFER_SHUTTLE_DEADLINE_SECS; see shuttle/README.md.
#
# Each switch is a compile-time cfg, and RUSTFLAGS reach every crate, so each
# one rebuilds the dependencies too (about 2 minutes of CPU each, in
# target/shuttle-bugs); the scenarios then fail within a few schedules.
set -euo pipefail
cd "$(dirname "$0")/.."

# Switch -> the scenarios that must catch it (test names, without the
# `explore::` module). Keep in step with the table in shuttle/README.md.
declare -A CATCHERS=(
    [lost_wakeup]="submits_from_two_threads_wake_sleeping_workers"
    [no_recheck]="submits_from_two_threads_wake_sleeping_workers"
    [no_grant]="bounded_producers_block_then_get_through nested_pools_and_room_across_pools"
    [no_close_wake]="close_refuses_producers_blocked_on_the_bound"
    [abort_without_claim]="abort_races_the_start"
    [waker_unregistered]="awaited_tasks_wake_their_wakers"
    [no_compensation]="blocked_workers_are_compensated_by_spares a_spare_joins_the_shutdown"
    [no_hand_over]="broadcasts_reach_every_worker_once blocked_workers_are_compensated_by_spares"
)
SWITCHES=(lost_wakeup no_recheck no_grant no_close_wake abort_without_claim waker_unregistered no_compensation no_hand_over)

if ! command -v cargo >/dev/null 2>&1; then
    echo "shuttle.sh: cargo is not installed (or not on PATH); install Rust with rustup first" >&2
    exit 1
fi
if [ -n "${RUSTFLAGS:-}" ]; then
    echo "shuttle.sh: note: ignoring RUSTFLAGS='$RUSTFLAGS'; this script sets its own" >&2
fi
# The shuttle crate comes from crates.io (Cargo.lock pins it): say so
# plainly if it cannot be had, rather than failing inside a build.
if ! cargo fetch --locked >/dev/null 2>&1 && ! cargo fetch >/dev/null 2>&1; then
    echo "shuttle.sh: cannot fetch the dependencies (the shuttle crate among them) from crates.io," >&2
    echo "            and they are not in cargo's cache: nothing was checked" >&2
    exit 1
fi

if [ "${1:-}" != "--bugs" ]; then
    echo "=== shuttle scenarios (RUSTFLAGS=\"--cfg shuttle\", target/shuttle)"
    start=$SECONDS
    RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/shuttle}" \
        cargo test --release --test shuttle -- "$@"
    echo "=== shuttle scenarios passed in $((SECONDS - start)) s"
    exit 0
fi

shift
if [ "$#" -gt 0 ]; then
    SWITCHES=("$@")
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/shuttle-bugs}"
log_dir="$CARGO_TARGET_DIR/bug-logs"
mkdir -p "$log_dir"

caught=()
missed=()
for switch in "${SWITCHES[@]}"; do
    scenarios="${CATCHERS[$switch]:-}"
    if [ -z "$scenarios" ]; then
        echo "shuttle.sh: unknown switch '$switch' (known: ${!CATCHERS[*]})" >&2
        exit 2
    fi
    flags="--cfg shuttle --cfg pilfer_bug=\"$switch\""
    echo
    echo "=== pilfer_bug=\"$switch\": building (RUSTFLAGS='$flags')"
    if ! RUSTFLAGS="$flags" cargo test --release --test shuttle --no-run >"$log_dir/$switch.build.log" 2>&1; then
        tail -n 30 "$log_dir/$switch.build.log" >&2
        echo "shuttle.sh: the build with pilfer_bug=\"$switch\" failed (log: $log_dir/$switch.build.log)" >&2
        missed+=("$switch (build failed)")
        continue
    fi
    filters=()
    for scenario in $scenarios; do
        filters+=("explore::$scenario")
    done
    start=$SECONDS
    # The run is expected to fail; what matters is which scenarios did.
    RUSTFLAGS="$flags" cargo test --release --test shuttle -- --exact "${filters[@]}" \
        >"$log_dir/$switch.log" 2>&1 || true
    if grep -q "could not compile" "$log_dir/$switch.log"; then
        tail -n 30 "$log_dir/$switch.log" >&2
        echo "shuttle.sh: the build with pilfer_bug=\"$switch\" failed (log: $log_dir/$switch.log)" >&2
        missed+=("$switch (build failed)")
        continue
    fi
    for scenario in $scenarios; do
        if grep -q "shuttle: scenario \`$scenario\` failed" "$log_dir/$switch.log"; then
            how=$(grep -m1 -o "shuttle: scenario \`$scenario\` failed in schedule [0-9]*" "$log_dir/$switch.log" |
                sed 's/.*failed in schedule /schedule /')
            # The panic message: the line after "thread '...<scenario>' panicked at".
            what=$(grep -m1 -A1 "explore::$scenario' .*panicked at" "$log_dir/$switch.log" |
                tail -n 1 | cut -c1-110 || true)
            echo "    caught by $scenario ($how): ${what:-see $log_dir/$switch.log}"
            caught+=("$switch: $scenario")
        else
            echo "    NOT caught by $scenario (log: $log_dir/$switch.log)"
            missed+=("$switch: $scenario")
        fi
    done
    echo "    ($((SECONDS - start)) s)"
done

echo
echo "=== caught: ${#caught[@]}, not caught: ${#missed[@]}"
for entry in "${missed[@]}"; do
    echo "NOT CAUGHT: $entry"
done
[ "${#missed[@]}" -eq 0 ]
