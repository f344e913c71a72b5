//! Criterion benchmarks of pilfer against rayon (and chili on the join
//! workloads), and of the same code run serially: one group per workload,
//! the pools at 2 threads, or at `PILFER_BENCH_THREADS` if set.
//!
//! `cargo bench --bench pools [-- FILTER]`. The workloads live in
//! `workloads/mod.rs`, shared with `examples/compare.rs`, which sweeps
//! thread counts and prints tables.
//!
//! Two groups report something other than a run time in criterion's "time"
//! column: `wake-latency` reports the delay from spawning a task on a pool
//! idle for 5 ms to the task's start, and `idle-cpu` the CPU time the
//! process burns during 500 ms of idleness after a burst of work.

mod workloads;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use criterion::{criterion_group, criterion_main};
use std::time::Duration;
use workloads::{
    Capture, Chili, FibJoin, ForkPool, Halves, IdleCpu, Matmul, Msort, OsThreads, Pilfer, Qsort,
    QueensSearch, Rayon, ScopeChunks, Serial, SpawnExternal, SpawnRaw, TreeSum, WakeLatency,
    Workload,
};

const THREADS_ENV: &str = "PILFER_BENCH_THREADS";
const DEFAULT_THREADS: usize = 2;

/// The pools' thread count: `PILFER_BENCH_THREADS`, else 2.
fn threads() -> usize {
    let Ok(value) = std::env::var(THREADS_ENV) else {
        return DEFAULT_THREADS;
    };
    match value.trim().parse() {
        Ok(threads) if threads > 0 => threads,
        _ => panic!("{THREADS_ENV} must be a positive integer, not {value:?}"),
    }
}

/// A group with settings that keep `cargo bench` to a few minutes on two
/// cores: flat sampling (some samples take 100 ms), 10 samples.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

/// Benchmarks `workload` on a new `threads`-thread pool of type `P`, which
/// is dropped before the next pool starts.
fn bench_pool<P: ForkPool>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    threads: usize,
    workload: &mut impl Workload<P>,
) {
    let pool = P::with_threads(threads);
    bench(group, BenchmarkId::new(P::NAME, threads), &pool, workload);
}

/// Benchmarks `workload` on `pool`; each iteration reports the workload's
/// own figure, so setup stays out of it.
fn bench<P>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    pool: &P,
    workload: &mut impl Workload<P>,
) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| workload.sample(pool)).sum())
    });
}

/// A fork-join workload on the serial code, pilfer, rayon and chili.
fn fork_join<W>(c: &mut Criterion, name: &str, measurement: Duration, workload: &mut W)
where
    W: Workload<Serial> + Workload<Pilfer> + Workload<Rayon> + Workload<Chili>,
{
    let threads = threads();
    let mut group = group(c, name);
    group.measurement_time(measurement);
    bench(&mut group, BenchmarkId::new("serial", 1), &Serial, workload);
    bench_pool::<Pilfer>(&mut group, threads, workload);
    bench_pool::<Rayon>(&mut group, threads, workload);
    bench_pool::<Chili>(&mut group, threads, workload);
    group.finish();
}

fn fib_join(c: &mut Criterion) {
    let mut fib = FibJoin::new(workloads::FIB_N);
    fork_join(c, "fib-join", Duration::from_secs(3), &mut fib);
}

/// Two walks of the same tree: `join(left, right)` and `join(right, left)`
/// (see `TreeSum` for why the order matters).
fn tree_sum(c: &mut Criterion) {
    for (name, halves) in [
        ("tree-sum", Halves::LeftFirst),
        ("tree-sum-rl", Halves::RightFirst),
    ] {
        let mut tree = TreeSum::new(workloads::TREE_DEPTH, halves);
        fork_join(c, name, Duration::from_secs(3), &mut tree);
    }
}

fn qsort(c: &mut Criterion) {
    // Samples take up to 250 ms at 2 threads.
    let mut sort = Qsort::new(workloads::QSORT_LEN);
    fork_join(c, "qsort", Duration::from_secs(5), &mut sort);
}

fn msort(c: &mut Criterion) {
    let mut sort = Msort::new(workloads::MSORT_LEN);
    fork_join(c, "msort", Duration::from_secs(5), &mut sort);
}

fn matmul(c: &mut Criterion) {
    let mut product = Matmul::new(workloads::MATMUL_N);
    fork_join(c, "matmul", Duration::from_secs(3), &mut product);
}

fn queens(c: &mut Criterion) {
    let mut search = QueensSearch::new(workloads::QUEENS_N);
    fork_join(c, "queens", Duration::from_secs(3), &mut search);
}

fn spawn_external(c: &mut Criterion) {
    let threads = threads();
    for (name, capture) in [
        ("spawn-ext", Capture::OneWord),
        ("spawn-ext-4w", Capture::FourWords),
    ] {
        let mut group = group(c, name);
        let mut spawn = SpawnExternal::new(workloads::SPAWN_TASKS, capture);
        bench_pool::<Pilfer>(&mut group, threads, &mut spawn);
        bench_pool::<Rayon>(&mut group, threads, &mut spawn);
        group.finish();
    }
}

fn scope_chunks(c: &mut Criterion) {
    let threads = threads();
    let mut group = group(c, "scope-chunks");
    let mut scope = ScopeChunks::new(workloads::SCOPE_LEN);
    bench(
        &mut group,
        BenchmarkId::new("serial", 1),
        &Serial,
        &mut scope,
    );
    bench_pool::<Pilfer>(&mut group, threads, &mut scope);
    bench_pool::<Rayon>(&mut group, threads, &mut scope);
    group.finish();
}

fn wake_latency(c: &mut Criterion) {
    let threads = threads();
    let mut group = group(c, "wake-latency");
    // Each sample idles 5 ms; criterion budgets by wall time.
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut wake = WakeLatency::new(workloads::WAKE_IDLE);
    bench_pool::<Pilfer>(&mut group, threads, &mut wake);
    bench_pool::<Rayon>(&mut group, threads, &mut wake);
    group.finish();
}

fn idle_cpu(c: &mut Criterion) {
    let threads = threads();
    let mut group = group(c, "idle-cpu");
    // Each sample sleeps 500 ms: one warm-up sample, then ten.
    group
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(6));
    let mut idle = IdleCpu::new(workloads::IDLE_BURST_FIB, workloads::IDLE_SLEEP);
    bench_pool::<Pilfer>(&mut group, threads, &mut idle);
    bench_pool::<Rayon>(&mut group, threads, &mut idle);
    group.finish();
}

fn spawn_raw(c: &mut Criterion) {
    let threads = threads();
    let mut group = group(c, "spawn-raw");
    let mut raw = SpawnRaw::new(workloads::RAW_TASKS);
    // One OS thread per task: up to a second per sample.
    group.measurement_time(Duration::from_secs(10));
    let os_threads = BenchmarkId::new("os-threads", 1);
    bench(&mut group, os_threads, &OsThreads, &mut raw);
    group.measurement_time(Duration::from_secs(3));
    bench_pool::<Pilfer>(&mut group, threads, &mut raw);
    bench_pool::<Rayon>(&mut group, threads, &mut raw);
    group.finish();
}

criterion_group!(
    benches,
    fib_join,
    tree_sum,
    qsort,
    msort,
    matmul,
    queens,
    scope_chunks,
    spawn_external,
    wake_latency,
    idle_cpu,
    spawn_raw
);
criterion_main!(benches);
