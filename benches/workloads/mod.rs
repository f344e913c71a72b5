//! Workloads shared by the criterion benches (`benches/pools.rs`) and the
//! `compare` example (which includes this file by path), so that both
//! measure exactly the same code.
//!
//! The fork-join workloads ([`Fib`], [`SumTree`], [`QuickSort`]) are written
//! once, as [`Job`]s, against the [`Joiner`] trait: each pool only supplies
//! its `join`. Every measurement is a [`Workload`], whose `sample` runs it
//! once on a pool and returns the figure of interest: the elapsed time,
//! except for [`WakeLatency`] (a latency) and [`IdleCpu`] (a CPU time).
//! Setup, such as copying the input of a sort, is left out of the figure.

use std::hint::black_box;
use std::num::NonZero;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread::{self, Thread};
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
/// Seed of the quicksort input.
const QSORT_SEED: u64 = 0x5EED;

// ---------------------------------------------------------------------------
// Fork-join, independent of the pool.

/// A piece of fork-join work; it splits itself further through the joiner.
pub trait Job: Send {
    type Output: Send;

    fn run<J: Joiner>(self, joiner: &mut J) -> Self::Output;
}

/// Runs two jobs, potentially in parallel: one pool's `join`.
pub trait Joiner {
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output);
}

/// Runs the two jobs one after the other on the calling thread: the serial
/// reference, also usable as a (zero-thread) [`ForkPool`].
pub struct Serial;

impl Joiner for Serial {
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output) {
        (a.run(self), b.run(self))
    }
}

/// `pilfer::join`, on the pool the caller runs in.
struct PilferJoin;

impl Joiner for PilferJoin {
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output) {
        pilfer::join(|| a.run(&mut PilferJoin), || b.run(&mut PilferJoin))
    }
}

/// `rayon::join`, on the pool the caller runs in.
struct RayonJoin;

impl Joiner for RayonJoin {
    fn join<A: Job, B: Job>(&mut self, a: A, b: B) -> (A::Output, B::Output) {
        rayon::join(|| a.run(&mut RayonJoin), || b.run(&mut RayonJoin))
    }
}

impl Joiner for chili::Scope<'_> {
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

pub struct Pilfer(pilfer::ThreadPool);

impl ForkPool for Pilfer {
    const NAME: &'static str = "pilfer";

    fn with_threads(threads: usize) -> Self {
        let pool = pilfer::ThreadPool::builder()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|error| panic!("cannot start a {threads}-thread pilfer pool: {error}"));
        Pilfer(pool)
    }

    fn run<J: Job>(&self, job: J) -> J::Output {
        self.0.install(|| job.run(&mut PilferJoin))
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
fn timed<R>(op: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let output = op();
    (output, start.elapsed())
}

/// `fib(n)`, computed with a join at every call.
struct Fib(u32);

impl Job for Fib {
    type Output = u64;

    fn run<J: Joiner>(self, joiner: &mut J) -> u64 {
        let Fib(n) = self;
        if n < 2 {
            return n.into();
        }
        let (a, b) = joiner.join(Fib(n - 1), Fib(n - 2));
        a + b
    }
}

/// fib-join: pure join overhead.
pub struct FibJoin {
    n: u32,
    expected: u64,
}

impl FibJoin {
    pub fn new(n: u32) -> Self {
        let (mut previous, mut current) = (0u64, 1u64);
        for _ in 0..n {
            (previous, current) = (current, previous + current);
        }
        FibJoin {
            n,
            expected: previous,
        }
    }
}

impl<P: ForkPool> Workload<P> for FibJoin {
    fn sample(&mut self, pool: &P) -> Duration {
        let (value, elapsed) = timed(|| pool.run(Fib(black_box(self.n))));
        assert_eq!(
            value,
            self.expected,
            "fib({}) is wrong on {}",
            self.n,
            P::NAME
        );
        elapsed
    }
}

/// A node of a heap-allocated binary tree.
struct Node {
    value: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

/// A perfect binary tree whose nodes hold `0..nodes`, in pre-order.
struct Tree {
    root: Option<Box<Node>>,
    nodes: u64,
}

impl Tree {
    /// A tree of `2^depth - 1` nodes.
    fn perfect(depth: u32) -> Self {
        fn build(depth: u32, next: &mut u64) -> Option<Box<Node>> {
            if depth == 0 {
                return None;
            }
            let value = *next;
            *next += 1;
            let left = build(depth - 1, next);
            let right = build(depth - 1, next);
            Some(Box::new(Node { value, left, right }))
        }
        let mut nodes = 0;
        let root = build(depth, &mut nodes);
        Tree { root, nodes }
    }
}

/// Which child a tree sum hands to `join` as its first half (the one the
/// calling thread runs first; pilfer and rayon offer the second to thieves,
/// chili the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halves {
    /// `join(left, right)`.
    LeftFirst,
    /// `join(right, left)`.
    RightFirst,
}

/// The sum of a subtree, with one join per node.
struct SumTree<'a>(Option<&'a Node>, Halves);

impl Job for SumTree<'_> {
    type Output = u64;

    fn run<J: Joiner>(self, joiner: &mut J) -> u64 {
        let SumTree(Some(node), halves) = self else {
            return 0;
        };
        let (left, right) = (node.left.as_deref(), node.right.as_deref());
        let (first, second) = match halves {
            Halves::LeftFirst => (left, right),
            Halves::RightFirst => (right, left),
        };
        let (a, b) = joiner.join(SumTree(first, halves), SumTree(second, halves));
        node.value + a + b
    }
}

/// tree-sum: a join per node, over memory scattered on the heap.
///
/// The tree is built the way such benchmarks usually build it (chili's
/// included): each node is boxed after its two subtrees, so the heap holds
/// the nodes in post-order. A walk that visits a node, then its *right*
/// subtree, then its left one reads memory in descending order, which the
/// hardware prefetcher streams; the left-first walk does not, and pays a
/// cache miss per node. [`Halves`] picks the walk, so both can be shown.
pub struct TreeSum {
    tree: Tree,
    halves: Halves,
}

impl TreeSum {
    /// Builds the tree (slow for deep trees; not part of any sample).
    pub fn new(depth: u32, halves: Halves) -> Self {
        TreeSum {
            tree: Tree::perfect(depth),
            halves,
        }
    }
}

impl<P: ForkPool> Workload<P> for TreeSum {
    fn sample(&mut self, pool: &P) -> Duration {
        let (sum, elapsed) = timed(|| pool.run(SumTree(self.tree.root.as_deref(), self.halves)));
        let nodes = self.tree.nodes;
        assert_eq!(
            sum,
            nodes * (nodes - 1) / 2,
            "tree sum is wrong on {}",
            P::NAME
        );
        elapsed
    }
}

/// Quicksort of a slice, joining the two sides of each partition.
struct QuickSort<'a>(&'a mut [u32]);

impl Job for QuickSort<'_> {
    type Output = ();

    fn run<J: Joiner>(self, joiner: &mut J) {
        let values = self.0;
        if values.len() <= QSORT_CUTOFF {
            values.sort_unstable();
            return;
        }
        let pivot = partition(values);
        let (low, high) = values.split_at_mut(pivot);
        joiner.join(QuickSort(low), QuickSort(&mut high[1..]));
    }
}

/// Partitions `values` (at least 3 long) around the median of its first,
/// middle and last elements; returns the pivot's final index, with smaller
/// elements before it and the others after.
fn partition(values: &mut [u32]) -> usize {
    let last = values.len() - 1;
    let middle = values.len() / 2;
    // Order the three candidates so that the first is the smallest and the
    // last is the median.
    if values[middle] < values[0] {
        values.swap(middle, 0);
    }
    if values[last] < values[0] {
        values.swap(last, 0);
    }
    if values[middle] < values[last] {
        values.swap(middle, last);
    }
    let pivot = values[last];
    let mut store = 0;
    for i in 0..last {
        if values[i] < pivot {
            values.swap(i, store);
            store += 1;
        }
    }
    values.swap(store, last);
    store
}

/// `len` deterministic pseudo-random numbers (SplitMix64).
fn pseudo_random_u32s(len: usize, seed: u64) -> Vec<u32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 32) as u32
        })
        .collect()
}

/// qsort: parallel quicksort of pseudo-random numbers.
pub struct Qsort {
    input: Vec<u32>,
    buffer: Vec<u32>,
}

impl Qsort {
    pub fn new(len: usize) -> Self {
        let input = pseudo_random_u32s(len, QSORT_SEED);
        let buffer = input.clone();
        Qsort { input, buffer }
    }
}

impl<P: ForkPool> Workload<P> for Qsort {
    fn sample(&mut self, pool: &P) -> Duration {
        self.buffer.copy_from_slice(&self.input);
        let ((), elapsed) = timed(|| pool.run(QuickSort(&mut self.buffer)));
        assert!(
            self.buffer.is_sorted(),
            "quicksort on {} left the data unsorted",
            P::NAME
        );
        elapsed
    }
}

/// Counts detached tasks down to zero; the last one wakes the waiting
/// thread. One batch at a time.
struct Countdown {
    remaining: AtomicUsize,
    waiter: Mutex<Option<Thread>>,
}

impl Countdown {
    const fn new() -> Self {
        Countdown {
            remaining: AtomicUsize::new(0),
            waiter: Mutex::new(None),
        }
    }

    /// Expects `count` tasks and makes the calling thread the waiter.
    fn arm(&self, count: usize) {
        *self.waiter.lock().unwrap() = Some(thread::current());
        let pending = self.remaining.swap(count, Ordering::Relaxed);
        assert_eq!(pending, 0, "countdown re-armed before its tasks finished");
    }

    fn count_down(&self) {
        // AcqRel: the waiter's Acquire load sees every task's effects.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Not `take`n: the last task of the previous batch may still be
            // here when the next batch is armed; its extra unpark is
            // harmless, but the new batch's last task must find the waiter.
            if let Some(waiter) = &*self.waiter.lock().unwrap() {
                waiter.unpark();
            }
        }
    }

    fn wait(&self) {
        while self.remaining.load(Ordering::Acquire) != 0 {
            thread::park();
        }
    }
}

static DETACHED: Countdown = Countdown::new();

/// Spawns `tasks` detached tasks running `work` from the calling thread and
/// waits until all of them have run. Each task captures one word (`work`).
fn spawn_detached(pool: &impl TaskPool, tasks: usize, work: fn()) {
    DETACHED.arm(tasks);
    for _ in 0..tasks {
        pool.spawn(move || {
            work();
            DETACHED.count_down();
        });
    }
    DETACHED.wait();
}

/// As [`spawn_detached`], but each task captures four words (`work` and
/// three more), too many to travel inside a pilfer job: every pool boxes it.
fn spawn_detached_four_words(pool: &impl TaskPool, tasks: usize, work: fn()) {
    DETACHED.arm(tasks);
    for task in 0..tasks {
        let extra = [task as u64; 3];
        pool.spawn(move || {
            black_box(extra);
            work();
            DETACHED.count_down();
        });
    }
    DETACHED.wait();
}

/// How much each task of [`SpawnExternal`] captures.
#[derive(Clone, Copy, Debug)]
pub enum Capture {
    /// One word: what a closure holding one `Arc` or reference captures.
    /// pilfer carries such a closure inside its job, without allocating.
    OneWord,
    /// Four words: boxed by every pool.
    FourWords,
}

/// spawn-ext: tiny detached tasks spawned from a thread outside the pool.
pub struct SpawnExternal {
    tasks: usize,
    capture: Capture,
}

impl SpawnExternal {
    pub fn new(tasks: usize, capture: Capture) -> Self {
        SpawnExternal { tasks, capture }
    }
}

impl<P: TaskPool> Workload<P> for SpawnExternal {
    fn sample(&mut self, pool: &P) -> Duration {
        let spawn = match self.capture {
            Capture::OneWord => spawn_detached,
            Capture::FourWords => spawn_detached_four_words,
        };
        timed(|| spawn(pool, self.tasks, || {})).1
    }
}

/// scope-chunks: one scoped task per chunk, borrowing it.
pub struct ScopeChunks {
    data: Vec<u32>,
}

impl ScopeChunks {
    pub fn new(len: usize) -> Self {
        ScopeChunks {
            data: (0..len as u32).collect(),
        }
    }
}

impl<P: TaskPool> Workload<P> for ScopeChunks {
    fn sample(&mut self, pool: &P) -> Duration {
        let step = |chunk: &mut [u32]| {
            for x in chunk {
                *x = x.wrapping_mul(2).wrapping_add(1);
            }
        };
        timed(|| pool.for_each_chunk(&mut self.data, CHUNK_LEN, &step)).1
    }
}

/// wake: the delay between spawning a task on an idle pool and its start.
pub struct WakeLatency {
    idle: Duration,
}

impl WakeLatency {
    pub fn new(idle: Duration) -> Self {
        WakeLatency { idle }
    }
}

impl<P: TaskPool> Workload<P> for WakeLatency {
    fn sample(&mut self, pool: &P) -> Duration {
        thread::sleep(self.idle);
        let (sender, receiver) = mpsc::sync_channel(1);
        let spawned = Instant::now();
        pool.spawn(move || {
            // The receiver waits for this message; it cannot be gone.
            let _ = sender.send(Instant::now());
        });
        let started = receiver.recv().expect("the wake-latency task never ran");
        started.saturating_duration_since(spawned)
    }
}

/// idle: CPU time the whole process burns while the pool sits idle after a
/// burst of work (spinning workers show up here).
pub struct IdleCpu {
    burst_fib: u32,
    sleep: Duration,
}

impl IdleCpu {
    pub fn new(burst_fib: u32, sleep: Duration) -> Self {
        IdleCpu { burst_fib, sleep }
    }
}

impl<P: ForkPool> Workload<P> for IdleCpu {
    fn sample(&mut self, pool: &P) -> Duration {
        black_box(pool.run(Fib(self.burst_fib)));
        let before = process_cpu_time();
        thread::sleep(self.sleep);
        process_cpu_time().saturating_sub(before)
    }
}

/// User plus system CPU time of the whole process so far.
fn process_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain old data, for which all zeroes is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(
        status,
        0,
        "getrusage failed: {}",
        std::io::Error::last_os_error()
    );
    let to_duration = |time: libc::timeval| {
        Duration::new(time.tv_sec as u64, 0) + Duration::from_micros(time.tv_usec as u64)
    };
    to_duration(usage.ru_utime) + to_duration(usage.ru_stime)
}

/// A small piece of work, a few hundred nanoseconds.
fn small_task() {
    let mut sum = 0u64;
    for i in 0..256 {
        sum = black_box(sum.wrapping_add(i));
    }
    black_box(sum);
}

/// spawn-raw: small tasks, each on an OS thread of its own ([`OsThreads`]:
/// spawn them all, then join them all), or as detached tasks on a pool.
pub struct SpawnRaw {
    tasks: usize,
}

impl SpawnRaw {
    pub fn new(tasks: usize) -> Self {
        SpawnRaw { tasks }
    }
}

impl<P: TaskPool> Workload<P> for SpawnRaw {
    fn sample(&mut self, pool: &P) -> Duration {
        timed(|| spawn_detached(pool, self.tasks, small_task)).1
    }
}

impl Workload<OsThreads> for SpawnRaw {
    fn sample(&mut self, _: &OsThreads) -> Duration {
        timed(|| {
            let threads: Vec<_> = (0..self.tasks).map(|_| thread::spawn(small_task)).collect();
            for thread in threads {
                thread.join().expect("a spawn-raw thread panicked");
            }
        })
        .1
    }
}
