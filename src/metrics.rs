//! Counters: kept per worker without read-modify-write operations, summed
//! on demand by [`ThreadPool::metrics`](crate::ThreadPool::metrics).

use crate::sync::atomic::Ordering;
use crate::sync::counter::{AtomicBool, AtomicU64};
use std::time::Duration;

/// The upper bounds of the buckets of [`WorkerMetrics::search_histogram`]:
/// searches shorter than 1 µs, 10 µs, 100 µs, 1 ms and 10 ms; the last
/// bucket holds the longer ones.
pub const SEARCH_BUCKET_BOUNDS: [Duration; 5] = [
    Duration::from_micros(1),
    Duration::from_micros(10),
    Duration::from_micros(100),
    Duration::from_millis(1),
    Duration::from_millis(10),
];

/// Buckets of the search histogram: one per bound, plus the open-ended one.
const SEARCH_BUCKETS: usize = SEARCH_BUCKET_BOUNDS.len() + 1;

/// One worker's counters. Each is written only by its worker, with a plain
/// load and store (no read-modify-write), and read by anyone.
pub(crate) struct WorkerCounters {
    pub(crate) executed: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) injector_batches: AtomicU64,
    pub(crate) parks: AtomicU64,
    /// Nanoseconds spent in searches for work, and how they were spread.
    search_nanos: AtomicU64,
    search_histogram: [AtomicU64; SEARCH_BUCKETS],
    pinned: AtomicBool,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            executed: AtomicU64::new(0),
            steals: AtomicU64::new(0),
            injector_batches: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            search_nanos: AtomicU64::new(0),
            search_histogram: std::array::from_fn(|_| AtomicU64::new(0)),
            pinned: AtomicBool::new(false),
        }
    }
}

impl WorkerCounters {
    pub(crate) fn set_pinned(&self, pinned: bool) {
        self.pinned.store(pinned, Ordering::Relaxed);
    }

    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned.load(Ordering::Relaxed)
    }

    /// Records a search for work that took `time` (by the owning worker).
    pub(crate) fn record_search(&self, time: Duration) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        add(&self.search_nanos, nanos);
        let bucket = SEARCH_BUCKET_BOUNDS
            .iter()
            .position(|&bound| time < bound)
            .unwrap_or(SEARCH_BUCKETS - 1);
        bump(&self.search_histogram[bucket]);
    }
}

/// Adds one to a counter that only the calling worker writes.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    add(counter, 1);
}

/// Adds `amount` to a counter that only the calling worker writes.
#[inline]
fn add(counter: &AtomicU64, amount: u64) {
    // Relaxed load and store, not `fetch_add`: there is a single writer, and
    // readers only need some recent value.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(amount),
        Ordering::Relaxed,
    );
}

/// A snapshot of a pool's counters.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// pool.install(|| ());
/// let metrics = pool.metrics();
/// assert_eq!(metrics.workers().len(), 2);
/// assert!(metrics.executed() >= 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    workers: Vec<WorkerMetrics>,
    spares: Vec<WorkerMetrics>,
    detached_panics: u64,
    cancelled: u64,
    spare_workers_started: u64,
    blocked_now: usize,
}

/// One worker's counters in a [`Metrics`] snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// The worker's index: `0..num_threads` for the pool's workers, from
    /// `num_threads` on for the slots of its spare threads.
    pub index: usize,
    /// Jobs this worker took from a queue and ran: spawned and submitted
    /// tasks, scope tasks, `install` bodies from outside, and the halves of
    /// `join` that it stole or that were published. A `join` half run
    /// by its own caller is a function call, not a task, and is not
    /// counted.
    pub executed: u64,
    /// Successful steals from other workers' deques.
    pub steals: u64,
    /// Batches taken from the global injector.
    pub injector_batches: u64,
    /// Times the worker parked (went to sleep for lack of work).
    pub parks: u64,
    /// Time the worker spent searching for work: from finding its own
    /// deque, the injector and its peers' deques empty until it found a
    /// job or what it was waiting for was done, spinning or asleep. This
    /// is where parallelism is lost: in a fork-join run, time a thief
    /// waited for a peer to publish work; between runs, time the pool had
    /// nothing to do.
    pub search_time: Duration,
    /// How many searches took less than each bound of
    /// [`SEARCH_BUCKET_BOUNDS`] (and more than the previous one); the last
    /// entry counts the searches of 10 ms or more.
    pub search_histogram: [u64; 6],
    /// Whether the worker was pinned to a core. A worker pins itself as it
    /// starts, so right after `build` returns this may still be `false`.
    /// Always `false` for a spare's slot (a spare is pinned only while it
    /// stands in for a blocked, pinned worker).
    pub pinned: bool,
}

impl Metrics {
    /// The snapshot of the counters of every slot (the first `num_threads`
    /// are the workers', the others the spares').
    pub(crate) fn collect<'a>(
        counters: impl Iterator<Item = &'a WorkerCounters>,
        num_threads: usize,
        detached_panics: u64,
        cancelled: u64,
        spare_workers_started: u64,
        blocked_now: usize,
    ) -> Metrics {
        let mut workers: Vec<WorkerMetrics> = counters
            .enumerate()
            .map(|(index, counters)| WorkerMetrics {
                index,
                executed: counters.executed.load(Ordering::Relaxed),
                steals: counters.steals.load(Ordering::Relaxed),
                injector_batches: counters.injector_batches.load(Ordering::Relaxed),
                parks: counters.parks.load(Ordering::Relaxed),
                search_time: Duration::from_nanos(counters.search_nanos.load(Ordering::Relaxed)),
                search_histogram: std::array::from_fn(|bucket| {
                    counters.search_histogram[bucket].load(Ordering::Relaxed)
                }),
                pinned: counters.pinned.load(Ordering::Relaxed),
            })
            .collect();
        let spares = workers.split_off(num_threads.min(workers.len()));
        Metrics {
            workers,
            spares,
            detached_panics,
            cancelled,
            spare_workers_started,
            blocked_now,
        }
    }

    /// The counters of the workers and of the spares' slots.
    fn all(&self) -> impl Iterator<Item = &WorkerMetrics> {
        self.workers.iter().chain(&self.spares)
    }

    /// Jobs run by all workers (see [`WorkerMetrics::executed`]).
    pub fn executed(&self) -> u64 {
        self.all().map(|worker| worker.executed).sum()
    }

    /// Successful steals by all workers.
    pub fn steals(&self) -> u64 {
        self.all().map(|worker| worker.steals).sum()
    }

    /// Injector batches taken by all workers.
    pub fn injector_batches(&self) -> u64 {
        self.all().map(|worker| worker.injector_batches).sum()
    }

    /// Times any worker parked.
    pub fn parks(&self) -> u64 {
        self.all().map(|worker| worker.parks).sum()
    }

    /// Time all workers spent searching for work (see
    /// [`WorkerMetrics::search_time`]).
    pub fn search_time(&self) -> Duration {
        self.all().map(|worker| worker.search_time).sum()
    }

    /// Searches for work by all workers.
    pub fn searches(&self) -> u64 {
        self.search_histogram().iter().sum()
    }

    /// The searches of all workers by duration (see
    /// [`WorkerMetrics::search_histogram`]).
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// pool.install(|| pilfer::join(|| (), || ()));
    /// let histogram = pool.metrics().search_histogram();
    /// for (bound, searches) in pilfer::SEARCH_BUCKET_BOUNDS.iter().zip(histogram) {
    ///     println!("under {bound:?}: {searches}");
    /// }
    /// ```
    pub fn search_histogram(&self) -> [u64; 6] {
        let mut total = [0; SEARCH_BUCKETS];
        for worker in self.all() {
            for (sum, count) in total.iter_mut().zip(worker.search_histogram) {
                *sum += count;
            }
        }
        total
    }

    /// How many workers are pinned to a core (of those that have started).
    pub fn pinned_workers(&self) -> usize {
        self.workers.iter().filter(|worker| worker.pinned).count()
    }

    /// Panics of detached tasks (`spawn`), and of start or exit handlers.
    pub fn detached_panics(&self) -> u64 {
        self.detached_panics
    }

    /// Tasks that will never run: cancelled by
    /// [`Task::abort`](crate::Task::abort), or discarded by
    /// [`ThreadPool::shutdown_now`](crate::ThreadPool::shutdown_now).
    pub fn cancelled(&self) -> u64 {
        self.cancelled
    }

    /// Per-worker counters, indexed by worker. The totals above also count
    /// the work of spare threads ([`spare_workers`](Metrics::spare_workers)).
    pub fn workers(&self) -> &[WorkerMetrics] {
        &self.workers
    }

    /// The counters of the slots that spare threads used (a slot is reused
    /// by the next spare once its thread exits), indexed from
    /// `num_threads`.
    pub fn spare_workers(&self) -> &[WorkerMetrics] {
        &self.spares
    }

    /// Spare threads started so far: each time a worker blocked
    /// ([`block_in_place`](crate::block_in_place), or a wait with nothing
    /// it may run) and no idle spare was there to take over.
    pub fn spare_workers_started(&self) -> u64 {
        self.spare_workers_started
    }

    /// Workers blocked when the snapshot was taken (inside
    /// [`block_in_place`](crate::block_in_place), or in a wait with nothing
    /// it may run).
    pub fn blocked_now(&self) -> usize {
        self.blocked_now
    }
}
