#!/usr/bin/env bash
# The many-core run: `examples/compare` (the fork-join workloads against
# rayon, chili and the serial code) and rayon's parallel iterators on
# rayon-core and on pilfer, at 1, 2, 4, 8 and 16 threads, in one call on a
# lent machine that has neither cargo nor the crate registry.
#
#   scripts/many-core.sh prepare         # here: build, and copy what the run needs
#   scripts/many-core.sh run DIR [SECS]  # there: run it all, results in DIR
#
# `prepare` builds compare, the traffic and search_cost examples and the two
# builds of benches/par_iter (release), strips them, and puts them with the
# commit's name under target/many-core/ (ignored by git, about 4 MiB). It then prints the device call: carry
# `target/many-core`, and run `scripts/many-core.sh run "$OUT"`.
#
# `run` takes at most SECS seconds (default 540, under the device's 600 s
# per call) and writes as it goes, so a cut-off run still returns what it
# measured (a cut-off step keeps the tables it finished, not its chart).
# Its steps, each given what is left of the time:
#   1. machine.txt: the CPU, its cores and the commit measured;
#   2. quick.txt, quick.svg: `compare --quick` over every workload;
#   3. traffic.txt: what each operation does to shared memory, counted
#      (`examples/traffic`, the `traffic` feature), at 2, 4, 8 and 16
#      workers; at most 90 s;
#   4. search-cost.txt: the CPU time idle workers' searches cost per
#      broadcast and per wake-up (`examples/search_cost`), at 2, 4, 8 and
#      16 workers; at most 60 s;
#   5. forkjoin.txt, forkjoin.svg: the fork-join workloads, 5 runs in 3 rounds;
#   6. iter.txt, iter.svg: the parallel iterators, 5 runs in 3 rounds.
# THREADS overrides the thread counts (default 1,2,4,8,16). The exit code
# is 1 if a step failed, 3 if one was cut off or skipped, 0 if all ran.
set -euo pipefail
cd "$(dirname "$0")/.."

kit=target/many-core

prepare() {
    cargo build --release --example compare
    cargo build --release --features traffic --example traffic
    cargo build --release --example search_cost
    # compare builds benches/par_iter on rayon-core and on pilfer (cached in
    # target/par-iter/) when it runs the iterators: a one-run quick pass at
    # one thread does that in seconds.
    cargo run --release --example compare -- --quick --threads 1 --only iter --runs 1 \
        --svg target/many-core-build.svg >/dev/null
    for variant in rayon pilfer; do
        if [ ! -x "target/par-iter/$variant/release/par-iter-bench" ]; then
            echo "many-core.sh: benches/par_iter on $variant did not build (see compare's output above)" >&2
            exit 1
        fi
    done
    rm -rf "$kit"
    mkdir -p "$kit/par-iter/rayon" "$kit/par-iter/pilfer"
    cp target/release/examples/compare "$kit/compare"
    cp target/release/examples/traffic "$kit/traffic"
    cp target/release/examples/search_cost "$kit/search_cost"
    cp target/par-iter/rayon/release/par-iter-bench "$kit/par-iter/rayon/"
    cp target/par-iter/pilfer/release/par-iter-bench "$kit/par-iter/pilfer/"
    if command -v strip >/dev/null 2>&1; then
        strip "$kit/compare" "$kit/traffic" "$kit/search_cost" "$kit"/par-iter/*/par-iter-bench
    fi
    git rev-parse --short HEAD >"$kit/COMMIT" 2>/dev/null || echo unknown >"$kit/COMMIT"
    if ! git diff --quiet HEAD 2>/dev/null; then
        echo "(with uncommitted changes)" >>"$kit/COMMIT"
    fi
    du -sh "$kit"
    echo
    echo "device call: carry [\"$kit\"], command: scripts/many-core.sh run \"\$OUT\""
}

run() {
    local out="${1:?usage: scripts/many-core.sh run DIR [SECS]}"
    local budget="${2:-540}"
    local threads="${THREADS:-1,2,4,8,16}"
    local binary
    for binary in "$kit/compare" "$kit/traffic" "$kit/search_cost" "$kit/par-iter/rayon/par-iter-bench" "$kit/par-iter/pilfer/par-iter-bench"; do
        if [ ! -x "$binary" ]; then
            echo "many-core.sh: $binary is missing: run 'scripts/many-core.sh prepare' first" >&2
            exit 2
        fi
    done
    mkdir -p "$out"
    local end=$((SECONDS + budget))
    export PILFER_PAR_ITER_BIN="$PWD/$kit/par-iter"
    {
        echo "commit: $(cat "$kit/COMMIT")"
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "cores (nproc): $(nproc)"
        lscpu 2>/dev/null | grep -E '^(Model name|Socket|Core|Thread|NUMA node\(s\)|CPU MHz|L3)' || true
        echo "threads measured: $threads"
    } >"$out/machine.txt"
    cat "$out/machine.txt"

    local failed=0 incomplete=0
    # Runs "$@" as step $1, for at most $2 seconds of what is left (0: no
    # cap), its output in $1.txt and $1.err; notes a skip or cut-off in
    # `incomplete` and a failure in `failed`, and returns 1 in those cases.
    bounded() {
        local name="$1" cap="$2"
        shift 2
        local left=$((end - SECONDS))
        if ((left < 20)); then
            echo "=== $name: skipped, ${left}s left" | tee "$out/$name.txt"
            incomplete=1
            return 1
        fi
        ((cap > 0 && left > cap)) && left=$cap
        echo "=== $name (at most ${left}s)"
        local rc=0
        # TERM, not INT: a command started in the background ignores INT.
        timeout --kill-after=10 "$left" "$@" >"$out/$name.txt" 2>"$out/$name.err" || rc=$?
        if ((rc == 124 || rc == 137)); then
            echo "=== $name: cut off after ${left}s (what it printed is kept)"
            incomplete=1
            return 1
        elif ((rc != 0)); then
            echo "=== $name: failed (exit $rc); see $name.err"
            failed=1
            return 1
        fi
    }
    # A compare run as step $1, with the rest as its options.
    step() {
        local name="$1"
        shift
        local ran=0
        bounded "$name" 0 "$kit/compare" --threads "$threads" --svg "$out/$name.svg" "$@" || ran=$?
        grep -E '^(steadiness|finished)' "$out/$name.txt" || true
        # compare goes on without the iterators if they cannot run.
        if ((ran == 0)) && grep -q '^compare: no parallel-iterator workloads' "$out/$name.err"; then
            echo "=== $name: the parallel iterators did not run; see $name.err"
            failed=1
        fi
    }
    step quick --quick
    # The counts take about 40 s, the search's CPU time about 20 s.
    bounded traffic 90 "$kit/traffic" 2 4 8 16 || true
    bounded search-cost 60 "$kit/search_cost" 2 4 8 16 || true
    step forkjoin --only fib,tree,qsort,msort,matmul,queens,scope,spawn,wake,idle,raw \
        --runs 5 --rounds 3
    step iter --only iter --runs 5 --rounds 3
    if ((failed)); then
        return 1
    elif ((incomplete)); then
        return 3
    fi
}

case "${1:-}" in
    prepare) prepare ;;
    run)
        shift
        run "$@"
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
