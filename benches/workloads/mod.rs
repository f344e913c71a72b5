//! Workloads shared by the criterion benches (`benches/pools.rs`) and the
//! `compare` example (which includes this file by path), so that both
//! measure exactly the same code.
//!
//! The fork-join workloads (`fork_join.rs`: fib, a tree sum, quicksort,
//! merge sort, a blocked matrix multiply, N-queens) are written once, as
//! [`Job`]s, against the [`Joiner`] trait: each pool only supplies its
//! `join`, and [`Serial`] runs the same code with `join` as two plain calls,
//! the baseline every speed-up is measured against. The task workloads
//! (`tasks.rs`) spawn detached or scoped tasks. Every measurement is a
//! [`Workload`], whose `sample` runs it once on a pool and returns the
//! figure of interest: the elapsed time, except for [`WakeLatency`] (a
//! latency) and [`IdleCpu`] (a CPU time). Setup, such as copying the input
//! of a sort, is left out of the figure.

mod fork_join;
mod tasks;

pub use fork_join::*;
pub use tasks::*;

use std::num::NonZero;
use std::time::{Duration, Instant};

/// `fib(FIB_N)` with a join at every call.
pub const FIB_N: u32 = 30;
/// Depth of the tree summed by the benches: `2^20 - 1` nodes.
pub const TREE_DEPTH: u32 = 20;
/// Detached tasks spawned from outside the pool.
pub const SPAWN_TASKS: usize = 1_000_000;
/// Elements of the vector processed by scoped tasks, one task per chunk.
pub const SCOPE_LEN: usize = 8 << 20;
/// Elements per scoped task: 4 KiB of `u32`.
pub const CHUNK_LEN: usize = 1024;
/// Elements sorted by the parallel quicksort.
pub const QSORT_LEN: usize = 4 << 20;
/// Slices this short are sorted serially.
pub const QSORT_CUTOFF: usize = 2048;
/// How long the pool idles before a wake-latency sample.
pub const WAKE_IDLE: Duration = Duration::from_millis(5);
/// The burst of work that precedes an idle-CPU sample: `fib(IDLE_BURST_FIB)`.
pub const IDLE_BURST_FIB: u32 = 25;
/// How long the idle-CPU sample sleeps.
pub const IDLE_SLEEP: Duration = Duration::from_millis(500);
/// Small tasks run as one OS thread each, or on a pool.
pub const RAW_TASKS: usize = 10_000;
/// Elements sorted by the parallel merge sort.
pub const MSORT_LEN: usize = 4 << 20;
/// Slices this short are sorted, and merges this short are done, serially.
pub const MSORT_CUTOFF: usize = 4096;
/// Rows (and columns) of the matrices multiplied.
pub const MATMUL_N: usize = 512;
/// Blocks this small are multiplied serially.
pub const MATMUL_LEAF: usize = 64;
/// The board of the N-queens search.
pub const QUEENS_N: u32 = 12;

// ---------------------------------------------------------------------------
// Fork-join, independent of the pool.

/// A piece of fork-join work; it splits itself further through the joiner.
pub trait Job: Send {
    type Output: Send;

    fn run<J: Joiner>(self, joiner: &mut J) -> Self::Output;
}

/// Runs two jobs, potentially in parallel: one pool's `join`.
///
/// Every implementation is `#[inline(always)]`, so that the workloads
/// recurse as code calling the pool's `join` directly would: through the
/// job's own `run`, not through an extra layer of this trait.
pub trait Joiner {
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output);
}

/// Runs the two jobs one after the other on the calling thread: the serial
/// reference, also usable as a (zero-thread) [`ForkPool`].
pub struct Serial;

impl Joiner for Serial {
    #[inline(always)]
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output) {
        (a.run(self), b.run(self))
    }
}

/// `pilfer::join`, on the pool the caller runs in.
struct PilferJoin;

impl Joiner for PilferJoin {
    #[inline(always)]
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output) {
        pilfer::join(|| a.run(&mut PilferJoin), || b.run(&mut PilferJoin))
    }
}

/// `rayon::join`, on the pool the caller runs in.
struct RayonJoin;

impl Joiner for RayonJoin {
    #[inline(always)]
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output) {
        rayon::join(|| a.run(&mut RayonJoin), || b.run(&mut RayonJoin))
    }
}

impl Joiner for chili::Scope<'_> {
    #[inline(always)]
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output) {
        chili::Scope::join(self, |s| a.run(s), |s| b.run(s))
    }
}

// ---------------------------------------------------------------------------
// Pools.

/// A pool that runs fork-join jobs.
pub trait ForkPool {
    const NAME: &'static str;

    /// Starts a pool in which `threads` threads do the work.
    fn with_threads(threads: usize) -> Self;

    /// Runs `job` on the pool and returns its output.
    fn run<J: Job>(&self, job: J) -> J::Output;

    /// The time the pool's workers have spent looking for work, in all, if
    /// the pool reports it (pilfer's `Metrics::search_time`).
    #[allow(dead_code, reason = "only `compare` reports it")]
    fn search_time(&self) -> Option<Duration> {
        None
    }
}

/// A pool that also runs detached and scoped tasks.
pub trait TaskPool: ForkPool {
    /// Queues a detached task.
    fn spawn(&self, task: impl FnOnce() + Send + 'static);

    /// Runs `op` on every `chunk_len`-element chunk of `data`, one scoped
    /// task per chunk, and returns when all have finished.
    fn for_each_chunk<T: Send>(
        &self,
        data: &mut [T],
        chunk_len: usize,
        op: &(impl Fn(&mut [T]) + Sync),
    );
}

impl ForkPool for Serial {
    const NAME: &'static str = "serial";

    fn with_threads(_threads: usize) -> Self {
        Serial
    }

    fn run<J: Job>(&self, job: J) -> J::Output {
        job.run(&mut Serial)
    }
}

/// The serial form of the task workloads: a task runs when it is spawned.
impl TaskPool for Serial {
    fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        task();
    }

    fn for_each_chunk<T: Send>(
        &self,
        data: &mut [T],
        chunk_len: usize,
        op: &(impl Fn(&mut [T]) + Sync),
    ) {
        data.chunks_mut(chunk_len).for_each(op);
    }
}

pub struct Pilfer(pilfer::ThreadPool);

/// Set to `0` to build the benchmarked pilfer pools unpinned
/// (`pin_workers(false)`), to compare with the default.
pub const PIN_ENV: &str = "PILFER_BENCH_PIN";

impl ForkPool for Pilfer {
    const NAME: &'static str = "pilfer";

    fn with_threads(threads: usize) -> Self {
        let pin = std::env::var(PIN_ENV).map_or(true, |value| value.trim() != "0");
        let pool = pilfer::ThreadPool::builder()
            .num_threads(threads)
            .pin_workers(pin)
            .build()
            .unwrap_or_else(|error| panic!("cannot start a {threads}-thread pilfer pool: {error}"));
        Pilfer(pool)
    }

    fn run<J: Job>(&self, job: J) -> J::Output {
        self.0.install(|| job.run(&mut PilferJoin))
    }

    fn search_time(&self) -> Option<Duration> {
        Some(self.0.metrics().search_time())
    }
}

impl TaskPool for Pilfer {
    fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        self.0.spawn(task);
    }

    fn for_each_chunk<T: Send>(
        &self,
        data: &mut [T],
        chunk_len: usize,
        op: &(impl Fn(&mut [T]) + Sync),
    ) {
        self.0.scope(|s| {
            for chunk in data.chunks_mut(chunk_len) {
                s.spawn(move |_| op(chunk));
            }
        });
    }
}

pub struct Rayon(rayon::ThreadPool);

impl ForkPool for Rayon {
    const NAME: &'static str = "rayon";

    fn with_threads(threads: usize) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|error| panic!("cannot start a {threads}-thread rayon pool: {error}"));
        Rayon(pool)
    }

    fn run<J: Job>(&self, job: J) -> J::Output {
        self.0.install(|| job.run(&mut RayonJoin))
    }
}

impl TaskPool for Rayon {
    fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        self.0.spawn(task);
    }

    fn for_each_chunk<T: Send>(
        &self,
        data: &mut [T],
        chunk_len: usize,
        op: &(impl Fn(&mut [T]) + Sync),
    ) {
        self.0.scope(|s| {
            for chunk in data.chunks_mut(chunk_len) {
                s.spawn(move |_| op(chunk));
            }
        });
    }
}

/// A chili pool. Its `thread_count` includes the thread that calls
/// [`ForkPool::run`], which works too; chili also runs a heartbeat thread.
pub struct Chili(chili::ThreadPool);

impl ForkPool for Chili {
    const NAME: &'static str = "chili";

    fn with_threads(threads: usize) -> Self {
        let thread_count = NonZero::new(threads).expect("a chili pool needs at least one thread");
        Chili(chili::ThreadPool::with_config(chili::Config {
            thread_count: Some(thread_count),
            ..Default::default()
        }))
    }

    fn run<J: Job>(&self, job: J) -> J::Output {
        job.run(&mut self.0.scope())
    }
}

/// Not a pool: one OS thread per task, the baseline of [`SpawnRaw`].
pub struct OsThreads;

// ---------------------------------------------------------------------------
// Workloads.

/// A measurement on pools of type `P`.
pub trait Workload<P> {
    /// Runs the workload once on `pool` and returns the measured figure.
    fn sample(&mut self, pool: &P) -> Duration;
}

/// Runs `op` and returns its output and how long it took.
pub(crate) fn timed<R>(op: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let output = op();
    (output, start.elapsed())
}
