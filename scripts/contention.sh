#!/usr/bin/env bash
# Runs the test suite repeatedly beside busy loops: the suite must pass on a
# busy machine (a CI box, a laptop compiling something), not only a quiet one.
#
#   scripts/contention.sh              # 10 runs of `cargo test --release` beside 2 busy loops
#   RUNS=3 LOOPS=4 scripts/contention.sh
#   scripts/contention.sh --test pinning   # arguments go to every `cargo test`
#
# The busy loops are plain shell processes spinning at full speed, one per
# core of a 2-core machine by default; they end with the script. Every run's
# output is kept in target/contention/run-N.log; the script prints each
# run's result and exits non-zero if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${RUNS:-10}"
loops="${LOOPS:-2}"
logs=target/contention
mkdir -p "$logs"

# Build first, on a quiet machine: the runs measure the tests, not rustc.
cargo test --release --no-run "$@" >/dev/null 2>&1 || cargo test --release --no-run "$@"

busy=()
stop_loops() {
    if ((${#busy[@]})); then
        kill "${busy[@]}" 2>/dev/null || true
        wait "${busy[@]}" 2>/dev/null || true
    fi
}
trap stop_loops EXIT
for _ in $(seq "$loops"); do
    (while :; do :; done) &
    busy+=("$!")
done

failed=0
for run in $(seq "$runs"); do
    log="$logs/run-$run.log"
    start=$SECONDS
    if cargo test --release "$@" >"$log" 2>&1; then
        echo "run $run/$runs: passed ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        echo "run $run/$runs: FAILED ($((SECONDS - start)) s); $log:"
        grep -E "^test .* FAILED|panicked at|^---- |error: test failed|watchdog" "$log" | head -20 || true
    fi
done
echo "contention: $((runs - failed)) of $runs runs passed beside $loops busy loops"
[ "$failed" -eq 0 ]
